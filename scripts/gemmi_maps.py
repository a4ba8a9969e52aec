"""The maps the target scripts test cryoforge on, made by gemmi and numpy (never by cryoforge's
own simulator, so no script tests a method on the forward model it inverts): gemmi's electron
density, a cosine-edged low-pass, and an MRC writer. One copy for every script."""

import math
import os

import gemmi
import mrcfile
import numpy as np


def density(models, box_lo, box_size, resolution, keep_b=False):
    """gemmi's DensityCalculatorE (electron form factors) of the atoms of `models` (gemmi models,
    together) on one P1 grid over the box (spacing about resolution / 3), blurred so that a carbon
    has the molmap width σ = 0.225 × resolution; occupancies set to 1 and B-factors to 0 unless
    `keep_b`. Returns the grid as an (x, y, z) array."""
    merged = gemmi.Structure()
    merged.add_model(gemmi.Model("1"))
    for model in models:
        for chain in model:
            merged[0].add_chain(chain.clone())
    merged[0].transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(*(-np.asarray(box_lo)))))
    for chain in merged[0]:
        for residue in chain:
            for atom in residue:
                atom.occ = 1.0
                if not keep_b:
                    atom.b_iso = 0.0
    merged.cell = gemmi.UnitCell(*box_size, 90, 90, 90)
    merged.spacegroup_hm = "P 1"
    dc = gemmi.DensityCalculatorE()
    dc.d_min = resolution
    dc.rate = 1.5
    sigma = 0.225 * resolution
    carbon_b = np.mean(list(gemmi.Element("C").c4322.b))
    dc.blur = max(8 * math.pi ** 2 * sigma ** 2 - carbon_b, 0.0)
    dc.set_grid_cell_and_spacegroup(merged)
    dc.put_model_density_on_grid(merged[0])
    return np.array(dc.grid, copy=True)


def low_pass(values, spacing, resolution):
    """`values` low-passed at 1/resolution with a cosine edge 15 % of the cutoff wide."""
    f = np.fft.fftn(values)
    freqs = np.meshgrid(*[np.fft.fftfreq(n, d=spacing[k]) for k, n in enumerate(values.shape)], indexing="ij")
    s = np.sqrt(sum(q * q for q in freqs))
    cutoff = 1.0 / resolution
    width = 0.15 * cutoff
    w = np.where(s <= cutoff, 1.0, np.where(s >= cutoff + width, 0.0, 0.5 * (1 + np.cos(np.pi * (s - cutoff) / width))))
    return np.real(np.fft.ifftn(f * w))


def write_map(path, values_xyz, box_lo, box_size):
    """An (x, y, z) array as a float32 MRC over the box, written to a temporary file and renamed."""
    tmp = path + ".part"
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(values_xyz.transpose(2, 1, 0)).astype(np.float32))
        n = values_xyz.shape
        mrc.voxel_size = tuple(box_size[k] / n[k] for k in range(3))
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(v) for v in box_lo)
        mrc.update_header_stats()
    os.replace(tmp, path)
