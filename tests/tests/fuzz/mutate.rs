//! The mutations of the fuzz test: each takes a real file's bytes and returns a damaged copy with
//! a one-line description of what was done, so a failure can be read and replayed. Binary
//! formats get bit flips, truncation, overwritten, deleted and repeated byte runs and, in their
//! headers, extreme words; text formats get the same plus spliced, repeated, deleted, swapped and
//! cut lines and extreme tokens.

use cryoforge_compute::numeric::rng::Rng;

/// Which structure-aware mutations a file gets besides the byte-level ones.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// A 1024-byte MRC header: words set to extreme values, or a consistent but odd header.
    Mrc,
    /// An `.npy` header: the length field, the version and the dict's text.
    Npy,
    /// Lines of text (STAR, PDB, mmCIF).
    Text,
}

/// A damaged copy of a seed and what was done to it.
pub struct Mutant {
    pub bytes: Vec<u8>,
    pub steps: Vec<String>,
}

/// One to three mutations of `seed`, half of them aware of the file's `shape`.
pub fn mutate(rng: &mut Rng, seed: &[u8], shape: Shape) -> Mutant {
    let mut bytes = seed.to_vec();
    let mut steps = Vec::new();
    for _ in 0..=rng.below(3) {
        let header = header_bytes(shape, &bytes);
        let step = match rng.below(10) {
            0..=4 => match shape {
                Shape::Mrc => mrc_header(rng, &mut bytes),
                Shape::Npy => npy_header(rng, &mut bytes),
                Shape::Text => line_edit(rng, &mut bytes),
            },
            5 | 6 => flip_bits(rng, &mut bytes, header),
            7 => truncate(rng, &mut bytes, header),
            8 => overwrite(rng, &mut bytes, header),
            _ => cut_or_repeat(rng, &mut bytes),
        };
        steps.push(step);
    }
    Mutant { bytes, steps }
}

/// Where the header ends: mutations aim there half the time, since that is what readers trust.
fn header_bytes(shape: Shape, bytes: &[u8]) -> usize {
    let end = match shape {
        Shape::Mrc => 1024,
        Shape::Npy => bytes.iter().position(|&b| b == b'\n').map_or(128, |p| p + 1),
        Shape::Text => bytes.len(),
    };
    end.clamp(1, bytes.len().max(1))
}

/// A position, in the header half the time.
fn position(rng: &mut Rng, len: usize, header: usize) -> usize {
    if rng.below(2) == 0 {
        rng.below(header.min(len))
    } else {
        rng.below(len)
    }
}

fn flip_bits(rng: &mut Rng, bytes: &mut [u8], header: usize) -> String {
    if bytes.is_empty() {
        return "flip nothing (empty)".into();
    }
    let flips: Vec<String> = (0..=rng.below(8))
        .map(|_| {
            let at = position(rng, bytes.len(), header);
            let bit = rng.below(8);
            bytes[at] ^= 1 << bit;
            format!("{at}.{bit}")
        })
        .collect();
    format!("flip bits (byte.bit) {}", flips.join(" "))
}

fn truncate(rng: &mut Rng, bytes: &mut Vec<u8>, header: usize) -> String {
    let at = position(rng, bytes.len().max(1), header);
    bytes.truncate(at);
    format!("truncate at {at}")
}

fn overwrite(rng: &mut Rng, bytes: &mut [u8], header: usize) -> String {
    if bytes.is_empty() {
        return "overwrite nothing (empty)".into();
    }
    let at = position(rng, bytes.len(), header);
    let fill = [0x00, 0xff, 0x80, 0x7f, rng.next_u64() as u8][rng.below(5)];
    let len = (1 + rng.below(16)).min(bytes.len() - at);
    let random = rng.below(2) == 0;
    for b in &mut bytes[at..at + len] {
        *b = if random { rng.next_u64() as u8 } else { fill };
    }
    format!(
        "overwrite {len} bytes at {at} with {}",
        if random { "noise".into() } else { format!("{fill:#04x}") }
    )
}

fn cut_or_repeat(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    if bytes.is_empty() {
        return "cut nothing (empty)".into();
    }
    let at = rng.below(bytes.len());
    let len = (1 + rng.below(256)).min(bytes.len() - at);
    if rng.below(2) == 0 {
        bytes.drain(at..at + len);
        format!("delete {len} bytes at {at}")
    } else {
        let run = bytes[at..at + len].to_vec();
        let times = 1 + rng.below(4);
        for _ in 0..times {
            bytes.splice(at..at, run.iter().copied());
        }
        format!("repeat {len} bytes at {at} {times} more time(s)")
    }
}

/// Header words readers use to size things, and values that break naive arithmetic.
const MRC_WORDS: [usize; 24] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 19, 20, 21, 22, 23, 49, 50, 55,
];

fn extreme_word(rng: &mut Rng, file_len: usize) -> u32 {
    let values = [
        0,
        1,
        -1i32 as u32,
        2,
        3,
        4,
        6,
        12,
        i32::MAX as u32,
        i32::MIN as u32,
        1 << 20,
        (1 << 20) + 1,
        65536,
        file_len as u32,
        file_len.saturating_sub(1024) as u32,
        f32::NAN.to_bits(),
        f32::INFINITY.to_bits(),
        f32::NEG_INFINITY.to_bits(),
        f32::MAX.to_bits(),
        1e-30f32.to_bits(),
        rng.next_u64() as u32,
    ];
    values[rng.below(values.len())]
}

fn mrc_header(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    if bytes.len() < 1024 {
        let len = bytes.len();
        return flip_bits(rng, bytes, len);
    }
    let big_endian = bytes[212] == 0x11;
    let mut put = |bytes: &mut Vec<u8>, word: usize, value: u32| {
        let raw = if big_endian {
            value.to_be_bytes()
        } else {
            value.to_le_bytes()
        };
        bytes[word * 4..word * 4 + 4].copy_from_slice(&raw);
    };
    match rng.below(6) {
        0 => {
            let stamp = [[0x44, 0x44], [0x44, 0x41], [0x11, 0x11], [0, 0], [0xff, 0xff]][rng.below(5)];
            bytes[212..214].copy_from_slice(&stamp);
            format!("machine stamp {stamp:02x?}")
        }
        1 => consistent_header(rng, bytes, &mut put),
        _ => {
            let word = MRC_WORDS[rng.below(MRC_WORDS.len())];
            let value = extreme_word(rng, bytes.len());
            put(bytes, word, value);
            format!("header word {} = {value:#010x} ({})", word + 1, value as i32)
        }
    }
}

/// A header that agrees with the file's size but has small odd dimensions, another mode, an
/// extended header and any axis order, with the data cut or padded to match: what a reader
/// cannot refuse, so its reordering and decoding must hold.
fn consistent_header(rng: &mut Rng, bytes: &mut Vec<u8>, put: &mut impl FnMut(&mut Vec<u8>, usize, u32)) -> String {
    let dims = [1 + rng.below(24), 1 + rng.below(24), 1 + rng.below(24)];
    let (mode, value_bytes) = [(0, 1), (1, 2), (2, 4), (6, 2), (12, 2)][rng.below(5)];
    let extended = [0, 4, 160, 1024, rng.below(3000)][rng.below(5)];
    let orders = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]];
    let order = orders[rng.below(orders.len())];
    for (i, &n) in dims.iter().enumerate() {
        put(bytes, i, n as u32);
        put(bytes, 16 + i, order[i]);
    }
    put(bytes, 3, mode);
    put(bytes, 23, extended as u32);
    let len = 1024 + extended + dims.iter().product::<usize>() * value_bytes;
    let mut fill = rng.next_u64();
    while bytes.len() < len {
        fill = cryoforge_compute::numeric::rng::mix64(fill);
        bytes.push(fill as u8);
    }
    bytes.truncate(len);
    format!("consistent header {dims:?} mode {mode} order {order:?} extended {extended}")
}

fn npy_header(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    if bytes.len() < 12 {
        let len = bytes.len();
        return flip_bits(rng, bytes, len);
    }
    let end = header_bytes(Shape::Npy, bytes).max(10);
    match rng.below(5) {
        0 => {
            let value = [0u16, 1, 2, 0xffff, (bytes.len() - 10) as u16, rng.next_u64() as u16][rng.below(6)];
            bytes[8..10].copy_from_slice(&value.to_le_bytes());
            format!("header length {value}")
        }
        1 => {
            let version = [0u8, 1, 2, 3, 4, 0xff][rng.below(6)];
            bytes[6] = version;
            format!("version {version}")
        }
        2 => {
            let numbers: Vec<usize> = (10..end)
                .filter(|&i| bytes[i].is_ascii_digit() && !bytes[i - 1].is_ascii_digit())
                .collect();
            if numbers.is_empty() {
                return "no number in the header".into();
            }
            let start = numbers[rng.below(numbers.len())];
            let stop = (start..end).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(end);
            let extreme = EXTREME_NUMBERS[rng.below(EXTREME_NUMBERS.len())];
            bytes.splice(start..stop, extreme.bytes());
            format!("header number at {start} = {extreme}")
        }
        3 => {
            let dtypes = [
                "'<f8'", "'>f4'", "'|u1'", "'<U10'", "'O'", "''", "'<f4'", "'<i8'", "'V0'",
            ];
            let Some(at) = find(bytes, b"'<", 10, end) else {
                return "no dtype in the header".into();
            };
            let stop = (at + 1..end).find(|&i| bytes[i] == b'\'').map_or(end, |i| i + 1);
            let dtype = dtypes[rng.below(dtypes.len())];
            bytes.splice(at..stop, dtype.bytes());
            format!("dtype at {at} = {dtype}")
        }
        _ => {
            let junk = [
                "(",
                ")",
                "[",
                "{",
                "'",
                ",",
                ":",
                "((((((((((((((((((((",
                "True",
                "L",
                "-",
                " ",
            ][rng.below(12)];
            let at = 10 + rng.below(end - 10);
            bytes.splice(at..at, junk.bytes());
            format!("insert {junk:?} in the header at {at}")
        }
    }
}

const EXTREME_NUMBERS: [&str; 9] = [
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "4294967296",
    "99999999999999999999999",
    "1000000000",
    "-9223372036854775808",
];

fn find(bytes: &[u8], needle: &[u8], from: usize, to: usize) -> Option<usize> {
    (from..to.saturating_sub(needle.len())).find(|&i| bytes[i..].starts_with(needle))
}

/// Tokens that end loops, open blocks, overflow numbers or are not UTF-8.
const TOKENS: [&str; 24] = [
    "",
    "-1",
    "0",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "99999999999999999999",
    "-2147483649",
    "?",
    ".",
    "'",
    "\"",
    "_",
    "data_",
    "loop_",
    "#",
    "\0",
    "é",
    "000000@",
    "@",
    "1@x.mrcs",
    "999999@particles.mrcs",
    "\u{feff}",
];

/// Whole lines a reader gives meaning to, placed where they do not belong.
const LINES: [&str; 14] = [
    "loop_",
    "data_",
    "data_particles",
    "_rlnImageName #1",
    "_atom_site.id",
    "END",
    "ENDMDL",
    "MODEL        2",
    "TER",
    "ATOM      1  CA  ALA A   1",
    "HETATM",
    "",
    "\r",
    "_cell.length_a nan",
];

fn line_edit(rng: &mut Rng, bytes: &mut Vec<u8>) -> String {
    let mut lines: Vec<Vec<u8>> = bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    if lines.is_empty() {
        lines.push(Vec::new());
    }
    let n = lines.len();
    let i = rng.below(n);
    let step = match rng.below(8) {
        0 => {
            let k = (1 + rng.below(20)).min(n - i);
            let moved: Vec<_> = lines.drain(i..i + k).collect();
            let j = rng.below(lines.len() + 1);
            lines.splice(j..j, moved);
            format!("move lines {i}..{} to {j}", i + k)
        }
        1 => {
            let times = [1, 2, 10, 100, 1000][rng.below(5)];
            let line = lines[i].clone();
            lines.splice(i..i, std::iter::repeat_n(line, times));
            format!("repeat line {i} {times} more time(s)")
        }
        2 => {
            let k = (1 + rng.below(20)).min(n - i);
            lines.drain(i..i + k);
            format!("delete lines {i}..{}", i + k)
        }
        3 => {
            let j = rng.below(n);
            lines.swap(i, j);
            format!("swap lines {i} and {j}")
        }
        4 => {
            let at = rng.below(lines[i].len() + 1);
            lines[i].truncate(at);
            lines[i].push(b'\n');
            format!("cut line {i} at column {at}")
        }
        5 => replace_token(rng, &mut lines[i], i),
        6 => {
            let line = if rng.below(3) == 0 {
                (0..rng.below(80)).map(|_| rng.next_u64() as u8).collect()
            } else {
                LINES[rng.below(LINES.len())].as_bytes().to_vec()
            };
            let shown = String::from_utf8_lossy(&line).into_owned();
            lines.insert(i, [line, b"\n".to_vec()].concat());
            format!("insert line {shown:?} at {i}")
        }
        _ => {
            let line = &mut lines[i];
            let at = rng.below(line.len() + 1);
            let len = (1 + rng.below(8)).min(line.len() - at);
            let fill = [b' ', b'9', b'-', b'.', b'A'][rng.below(5)];
            line[at..at + len].fill(fill);
            format!("fill columns {at}..{} of line {i} with {:?}", at + len, fill as char)
        }
    };
    *bytes = lines.concat();
    step
}

fn replace_token(rng: &mut Rng, line: &mut Vec<u8>, index: usize) -> String {
    let starts: Vec<usize> = (0..line.len())
        .filter(|&k| !line[k].is_ascii_whitespace() && (k == 0 || line[k - 1].is_ascii_whitespace()))
        .collect();
    if starts.is_empty() {
        return format!("no token in line {index}");
    }
    let start = starts[rng.below(starts.len())];
    let stop = (start..line.len())
        .find(|&k| line[k].is_ascii_whitespace())
        .unwrap_or(line.len());
    let token = TOKENS[rng.below(TOKENS.len())];
    line.splice(start..stop, token.bytes());
    format!("token at column {start} of line {index} = {token:?}")
}
