//! The few ISO-BMFF boxes of a fragmented MP4 with one H.264 track: `ftyp` + `moov`
//! (sample description, no samples) once, then one `moof` + `mdat` per fragment.
//! Players read such a file up to its last whole fragment (ISO/IEC 14496-12 §8.8).

/// `size | type | body`.
fn bx(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = 8 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&(len as u32).to_be_bytes());
    b.extend_from_slice(kind);
    for p in parts {
        b.extend_from_slice(p);
    }
    b
}

/// A full box: version and flags before the body.
fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let vf = ((version as u32) << 24 | flags).to_be_bytes();
    bx(kind, &[&vf, body])
}

fn be32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// The identity transform of mvhd/tkhd (16.16 and 2.30 fixed point).
fn matrix() -> Vec<u8> {
    be32(&[0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000])
}

/// Track timing: `timescale` ticks per second, `sample_duration` ticks per frame.
pub struct Track {
    pub width: u16,
    pub height: u16,
    pub timescale: u32,
    pub sample_duration: u32,
    /// Raw sequence and picture parameter sets (no start code).
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

/// One coded frame: its NAL units with 4-byte lengths, and whether it is a sync (IDR) frame.
pub struct Sample {
    pub data: Vec<u8>,
    pub sync: bool,
}

pub fn header(t: &Track) -> Vec<u8> {
    let ftyp = bx(b"ftyp", &[b"isom", &0x200u32.to_be_bytes(), b"isomiso6avc1mp41"]);
    let mvhd = full(
        b"mvhd",
        0,
        0,
        &[be32(&[0, 0, t.timescale, 0, 0x10000]), vec![1, 0, 0, 0], vec![0; 8], matrix(), vec![0; 24], be32(&[2])].concat(),
    );
    let (w, h) = (t.width as u32, t.height as u32);
    let tkhd = full(b"tkhd", 0, 3, &[be32(&[0, 0, 1, 0, 0, 0, 0, 0]), vec![0; 4], matrix(), be32(&[w << 16, h << 16])].concat());
    let mdhd = full(b"mdhd", 0, 0, &[be32(&[0, 0, t.timescale, 0]), vec![0x55, 0xc4, 0, 0]].concat());
    let hdlr = full(b"hdlr", 0, 0, &[vec![0; 4], b"vide".to_vec(), vec![0; 12], b"videossm\0".to_vec()].concat());
    let vmhd = full(b"vmhd", 0, 1, &[0; 8]);
    let dinf = bx(b"dinf", &[&full(b"dref", 0, 0, &[be32(&[1]), full(b"url ", 0, 1, &[])].concat())]);
    let avcc = bx(
        b"avcC",
        &[
            &[1, t.sps[1], t.sps[2], t.sps[3], 0xff, 0xe1],
            &(t.sps.len() as u16).to_be_bytes(),
            &t.sps,
            &[1],
            &(t.pps.len() as u16).to_be_bytes(),
            &t.pps,
        ],
    );
    let mut compressor = [0u8; 32];
    compressor[0] = 8;
    compressor[1..9].copy_from_slice(b"videossm");
    let avc1 = bx(
        b"avc1",
        &[
            &[0, 0, 0, 0, 0, 0, 0, 1],
            &[0; 16],
            &(t.width).to_be_bytes(),
            &(t.height).to_be_bytes(),
            &be32(&[0x48_0000, 0x48_0000, 0]),
            &1u16.to_be_bytes(),
            &compressor,
            &[0, 0x18, 0xff, 0xff],
            &avcc,
        ],
    );
    let stsd = full(b"stsd", 0, 0, &[be32(&[1]), avc1].concat());
    let empty = |k: &[u8; 4]| full(k, 0, 0, &be32(&[0]));
    let stsz = full(b"stsz", 0, 0, &be32(&[0, 0]));
    let stbl = bx(b"stbl", &[&stsd, &empty(b"stts"), &empty(b"stsc"), &stsz, &empty(b"stco")]);
    let minf = bx(b"minf", &[&vmhd, &dinf, &stbl]);
    let mdia = bx(b"mdia", &[&mdhd, &hdlr, &minf]);
    let trak = bx(b"trak", &[&tkhd, &mdia]);
    let mvex = bx(b"mvex", &[&full(b"trex", 0, 0, &be32(&[1, 1, t.sample_duration, 0, 0]))]);
    [ftyp, bx(b"moov", &[&mvhd, &trak, &mvex])].concat()
}

/// `moof` + `mdat` of fragment `sequence` (from 1), its first sample at `decode_time` ticks.
pub fn fragment(t: &Track, sequence: u32, decode_time: u64, samples: &[Sample]) -> Vec<u8> {
    let mfhd = full(b"mfhd", 0, 0, &be32(&[sequence]));
    // default-base-is-moof: data offsets count from the moof's first byte.
    let tfhd = full(b"tfhd", 0, 0x02_0000, &be32(&[1]));
    let tfdt = full(b"tfdt", 1, 0, &decode_time.to_be_bytes());
    let trun_len = 8 + 4 + 8 + 12 * samples.len();
    let moof_len = 8 + mfhd.len() + 8 + tfhd.len() + tfdt.len() + trun_len;
    let mut body = be32(&[samples.len() as u32, (moof_len + 8) as u32]);
    for s in samples {
        // sample_depends_on = 2 for IDR frames; 1 + non-sync for the rest.
        let flags = if s.sync { 0x0200_0000 } else { 0x0101_0000 };
        body.extend(be32(&[t.sample_duration, s.data.len() as u32, flags]));
    }
    // data-offset, sample-duration, sample-size, sample-flags present.
    let trun = full(b"trun", 0, 0x000701, &body);
    let traf = bx(b"traf", &[&tfhd, &tfdt, &trun]);
    let moof = bx(b"moof", &[&mfhd, &traf]);
    debug_assert_eq!(moof.len(), moof_len);
    let data: Vec<&[u8]> = samples.iter().map(|s| s.data.as_slice()).collect();
    [moof, bx(b"mdat", &data)].concat()
}
