"""The reference set behind cryoforge's validation tables: protein chains of the X-ray structures
in the public model corpus (scripts/corpus.sh), read with gemmi, first conformer only.

Selection, in order:
  * files gemmi reads (.pdb, .ent, .cif, optionally .gz) under the corpus folder;
  * experiment: X-ray with resolution <= 2.2 A when the header says; files whose header names
    another method (NMR, EM, theoretical model) are skipped, as are X-ray entries above 2.2 A
    (kept aside as a second held-out set). Files without a header are used only from folders
    known to hold single chains cut from deposited X-ray entries (theseus' ldh, trypsins and
    cytochromes examples, MDAnalysis' dssp test set), and only when they carry no hydrogens;
    MD snapshots and hand-made test files elsewhere are left out;
  * protein chains (gemmi PeptideL) of >= 30 residues, not Calpha-only;
  * chains >= 90 % identical to a model the Rust tests validate (assets/models: 1AKE/4AKE,
    1ORC, 5I55) are left out, so those tests see structures the tables did not learn from;
  * identical sequences are kept once (the copy from the best-resolution file); the survivors
    are clustered greedily at 90 % identity and one representative per cluster is kept;
  * representatives are grouped into families (>= 35 % identity to the family's first
    member); each chain is weighted 1/sqrt(family size) so that the two large theseus families
    (lactate dehydrogenases, trypsins) do not dominate the statistics;
  * held out (not used for the tables, used for the check in assets/validation/README.md):
    whole families whose founder sequence hashes (crc32) to 0 mod 5, except the two largest
    families, which always train.
"""

import os
import sys
import zlib

import gemmi

CORPUS = os.path.expanduser(os.environ.get("CRYOFORGE_CORPUS", "~/.cache/cryoforge-corpus/x"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_EXTENSIONS = (".pdb", ".ent", ".cif", ".pdb.gz", ".ent.gz", ".cif.gz")
HEADERLESS_XRAY_FOLDERS = (
    "theseus/examples/ldh",
    "theseus/examples/trypsins",
    "theseus/examples/cytochromes",
    "MDAnalysisTests/data/dssp",
)
TEST_MODELS = ("models/1ake.pdb", "models/adk_open.pdb", "models/gemmi_1orc.pdb", "models/gemmi_5i55.cif")
MAX_RESOLUTION = 2.2
MIN_CHAIN = 30
AMINO_ACIDS = {
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
    "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
}  # fmt: skip


class Chain:
    """One selected protein chain: its residues (gemmi objects), file, weight and split."""

    def __init__(self, path, resolution, residues, sequence, structure):
        self.path = path
        self.structure = structure  # keeps the residues' memory alive
        self.resolution = resolution
        self.residues = residues
        self.sequence = sequence
        self.weight = 1.0
        self.held_out = False
        self.family = 0


def model_files():
    for folder, dirs, files in os.walk(CORPUS):
        dirs.sort()
        if "DTDs" in folder:
            continue
        for name in sorted(files):
            if name.lower().endswith(MODEL_EXTENSIONS):
                yield os.path.join(folder, name)


def read(path):
    try:
        st = gemmi.read_structure(path)
    except (RuntimeError, ValueError):
        return None
    if len(st) == 0:
        return None
    st.setup_entities()
    st.remove_alternative_conformations()
    return st


def method_of(st):
    if st.meta.experiments:
        return st.meta.experiments[0].method.upper()
    return st.info["_exptl.method"].upper() if "_exptl.method" in st.info else ""


def protein_chains(st):
    """(chain name, residue list) of each protein chain of model 1."""
    for ch in st[0]:
        poly = ch.get_polymer()
        if len(poly) < MIN_CHAIN or poly.check_polymer_type() != gemmi.PolymerType.PeptideL:
            continue
        residues = list(poly)
        if sum(1 for r in residues for a in r if a.name == "N") < len(residues) // 2:
            continue  # Calpha-only or trace models
        yield ch.name, residues


def sequence_of(residues):
    return gemmi.one_letter_code([r.name for r in residues])


def identity(a, b):
    if min(len(a), len(b)) * 2 < max(len(a), len(b)):
        return 0.0
    return gemmi.align_string_sequences(list(a), list(b), []).calculate_identity()


def test_sequences():
    out = []
    for rel in TEST_MODELS:
        st = read(os.path.join(REPO, "assets", rel))
        if st is not None:
            out += [sequence_of(r) for _, r in protein_chains(st)]
    return out


def candidate(path):
    """('use' | 'lowres' | None, structure, resolution)."""
    st = read(path)
    if st is None:
        return None, None, 0.0
    method = method_of(st)
    resolution = st.resolution or 0.0
    if method:
        if "X-RAY" not in method:
            return None, None, resolution
        if resolution > MAX_RESOLUTION:
            return "lowres", st, resolution
        return "use", st, resolution
    if not any(f in path for f in HEADERLESS_XRAY_FOLDERS):
        return None, None, resolution
    if any(a.is_hydrogen() for r in st[0][0] for a in r):
        return None, None, resolution
    return "use", st, resolution


def greedy_clusters(chains, threshold):
    """Greedy clustering in the given order: (founder, members) lists."""
    clusters = []
    for c in chains:
        for founder, members in clusters:
            if identity(c.sequence, founder.sequence) >= threshold:
                members.append(c)
                break
        else:
            clusters.append((c, [c]))
    return clusters


def select(log=sys.stderr):
    """(training chains, held-out chains, low-resolution chains, statistics dict)."""
    excluded = test_sequences()
    by_sequence = {}
    lowres = []
    stats = {"files_read": 0, "files_used": 0, "chains_seen": 0, "test_like": 0}
    used_files = set()
    for path in model_files():
        kind, st, resolution = candidate(path)
        if kind is None:
            continue
        stats["files_read"] += 1
        rank = resolution if resolution > 0 else MAX_RESOLUTION  # unknown: assume the limit
        for name, residues in protein_chains(st):
            seq = sequence_of(residues)
            if kind == "lowres":
                lowres.append(Chain(path, resolution, residues, seq, st))
                continue
            stats["chains_seen"] += 1
            if any(identity(seq, t) >= 90 for t in excluded):
                stats["test_like"] += 1
                continue
            best = by_sequence.get(seq)
            if best is None or rank < best[0]:
                by_sequence[seq] = (rank, Chain(path, resolution, residues, seq, st))
    unique = sorted((c for _, c in by_sequence.values()), key=lambda c: (-len(c.sequence), c.path))
    stats["unique_sequences"] = len(unique)
    representatives = [founder for founder, _ in greedy_clusters(unique, 90)]
    stats["clusters_90"] = len(representatives)
    families = sorted(greedy_clusters(representatives, 35), key=lambda fm: -len(fm[1]))
    stats["families_35"] = len(families)
    for index, (founder, members) in enumerate(families):
        held = index >= 2 and zlib.crc32(founder.sequence.encode()) % 5 == 0
        for m in members:
            m.weight = 1.0 / len(members) ** 0.5
            m.held_out = held
            m.family = index
    train = [c for c in representatives if not c.held_out]
    held_out = [c for c in representatives if c.held_out]
    for c in train:
        used_files.add(c.path)
    stats["files_used"] = len(used_files)
    stats["train_chains"] = len(train)
    stats["held_out_chains"] = len(held_out)
    stats["largest_families"] = [len(m) for _, m in families[:5]]
    print(f"reference set: {stats}", file=log)
    return train, held_out, lowres, stats


def relative(path):
    return os.path.relpath(path, CORPUS)
