"""Writes a BinaryCIF copy of an mmCIF file with biotite (an independent BinaryCIF writer):
python to_bcif.py IN.cif OUT.bcif. Numeric columns are stored as numbers so biotite's
`compress` picks the encodings real files use (fixed point, delta, run length, integer packing)."""
import gzip
import sys

import numpy as np
from biotite.structure.io import pdbx


def main():
    src, dst = sys.argv[1], sys.argv[2]
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt") as f:
        cif = pdbx.CIFFile.read(f)
    bcif = pdbx.BinaryCIFFile()
    for block_name, block in cif.items():
        out = pdbx.BinaryCIFBlock()
        for category_name, category in block.items():
            columns = {}
            for column_name, column in category.items():
                data = None
                for dtype, blank in ((np.int32, 0), (np.float64, 0.0)):
                    try:
                        data = column.as_array(dtype, masked_value=blank)
                        break
                    except ValueError:
                        continue
                if data is None:
                    data = column.as_array(str)
                mask = None
                if column.mask is not None:
                    mask = np.array([int(m) for m in column.mask.array], dtype=np.uint8)
                columns[column_name] = pdbx.BinaryCIFColumn(pdbx.BinaryCIFData(data), mask)
            out[category_name] = pdbx.BinaryCIFCategory(columns)
        bcif[block_name] = out
    pdbx.compress(bcif).write(dst)


if __name__ == "__main__":
    main()
