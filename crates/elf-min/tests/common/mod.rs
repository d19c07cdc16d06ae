//! Hand-made ELF64 images for tests: a builder that writes an Ehdr and Phdrs over a
//! patterned file body, so each test can mutate exactly one field.
#![allow(dead_code)]

pub const PT_NULL: u32 = 0;
pub const PT_LOAD: u32 = 1;
pub const PT_INTERP: u32 = 3;
pub const PT_PHDR: u32 = 6;
pub const PT_TLS: u32 = 7;
pub const PT_GNU_STACK: u32 = 0x6474_e551;
pub const PT_GNU_RELRO: u32 = 0x6474_e552;
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;
pub const PF_R: u32 = 4;

pub const INTERP: &[u8] = b"/lib64/ld-linux-x86-64.so.2\0";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ph {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
    pub p_align: u64,
}

impl Ph {
    pub fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
        Ph {
            p_type: PT_LOAD,
            p_flags: flags,
            p_offset: offset,
            p_vaddr: vaddr,
            p_filesz: filesz,
            p_memsz: memsz,
            p_align: 0x1000,
        }
    }
}

/// An ELF64 image description; `build` renders it.
#[derive(Debug, Clone)]
pub struct Img {
    pub ident: [u8; 16],
    pub e_type: u16,
    pub e_machine: u16,
    pub e_version: u32,
    pub e_entry: u64,
    pub e_phoff: u64,
    pub e_phentsize: u16,
    /// `None`: `phdrs.len()`.
    pub e_phnum: Option<u16>,
    pub phdrs: Vec<Ph>,
    /// File size in bytes.
    pub size: usize,
    /// Byte patches applied last: (offset, bytes).
    pub patches: Vec<(usize, Vec<u8>)>,
}

/// Index of each program header in [`Img::pie`].
pub mod idx {
    pub const PHDR: usize = 0;
    pub const INTERP: usize = 1;
    pub const TEXT0: usize = 2;
    pub const TEXT: usize = 3;
    pub const DATA: usize = 4;
    pub const TLS: usize = 5;
    pub const STACK: usize = 6;
    pub const RELRO: usize = 7;
}

/// The file body: every byte non-zero and position dependent.
pub fn pattern(off: usize) -> u8 {
    ((off * 7) % 251) as u8 + 1
}

impl Img {
    /// A valid dynamically linked PIE:
    /// R at [0, 0x1000) (headers + interp), RX at 0x1000 (0x180 bytes), RW at 0x3010 with
    /// 0x40 file bytes and bss to 0x4010; PT_TLS, PT_GNU_STACK (RW), PT_GNU_RELRO.
    pub fn pie() -> Img {
        let phdrs = vec![
            Ph {
                p_type: PT_PHDR,
                p_flags: PF_R,
                p_offset: 64,
                p_vaddr: 64,
                p_filesz: 8 * 56,
                p_memsz: 8 * 56,
                p_align: 8,
            },
            Ph {
                p_type: PT_INTERP,
                p_flags: PF_R,
                p_offset: 0x300,
                p_vaddr: 0x300,
                p_filesz: INTERP.len() as u64,
                p_memsz: INTERP.len() as u64,
                p_align: 1,
            },
            Ph::load(PF_R, 0, 0, 0x400, 0x400),
            Ph::load(PF_R | PF_X, 0x1000, 0x1000, 0x180, 0x180),
            Ph::load(PF_R | PF_W, 0x2010, 0x3010, 0x40, 0x1000),
            Ph {
                p_type: PT_TLS,
                p_flags: PF_R,
                p_offset: 0x2010,
                p_vaddr: 0x3010,
                p_filesz: 0x10,
                p_memsz: 0x30,
                p_align: 16,
            },
            Ph { p_type: PT_GNU_STACK, p_flags: PF_R | PF_W, p_align: 16, ..Ph::default() },
            Ph {
                p_type: PT_GNU_RELRO,
                p_flags: PF_R,
                p_offset: 0x2010,
                p_vaddr: 0x3010,
                p_filesz: 0x20,
                p_memsz: 0xff0,
                p_align: 1,
            },
        ];
        let mut ident = [0u8; 16];
        ident[..4].copy_from_slice(b"\x7fELF");
        ident[4] = 2; // ELFCLASS64
        ident[5] = 1; // ELFDATA2LSB
        ident[6] = 1; // EV_CURRENT
        Img {
            ident,
            e_type: 3, // ET_DYN
            e_machine: 62,
            e_version: 1,
            e_entry: 0x1040,
            e_phoff: 64,
            e_phentsize: 56,
            e_phnum: None,
            phdrs,
            size: 0x2050,
            patches: vec![(0x300, INTERP.to_vec())],
        }
    }

    /// [`Img::pie`] without PT_INTERP (a static PIE).
    pub fn static_pie() -> Img {
        let mut img = Img::pie();
        img.phdrs[idx::INTERP] = Ph::default(); // PT_NULL
        img.patches.clear();
        img
    }

    /// A fixed-address static executable at 0x400000 (ET_EXEC, no PT_PHDR).
    pub fn exec() -> Img {
        let mut img = Img::static_pie();
        img.e_type = 2;
        img.e_entry += 0x40_0000;
        for ph in &mut img.phdrs {
            if ph.p_type != PT_GNU_STACK && ph.p_type != PT_NULL {
                ph.p_vaddr += 0x40_0000;
            }
        }
        img.phdrs[idx::PHDR] = Ph::default();
        img
    }

    pub fn build(&self) -> Vec<u8> {
        let mut b: Vec<u8> = (0..self.size).map(pattern).collect();
        let mut h = Vec::with_capacity(64);
        h.extend_from_slice(&self.ident);
        h.extend_from_slice(&self.e_type.to_le_bytes());
        h.extend_from_slice(&self.e_machine.to_le_bytes());
        h.extend_from_slice(&self.e_version.to_le_bytes());
        h.extend_from_slice(&self.e_entry.to_le_bytes());
        h.extend_from_slice(&self.e_phoff.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        h.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        h.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
        h.extend_from_slice(&self.e_phentsize.to_le_bytes());
        let phnum = self.e_phnum.unwrap_or(self.phdrs.len() as u16);
        h.extend_from_slice(&phnum.to_le_bytes());
        h.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        h.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        h.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        assert_eq!(h.len(), 64);
        put(&mut b, 0, &h);
        let mut off = self.e_phoff as usize;
        for ph in &self.phdrs {
            let mut p = Vec::with_capacity(56);
            p.extend_from_slice(&ph.p_type.to_le_bytes());
            p.extend_from_slice(&ph.p_flags.to_le_bytes());
            p.extend_from_slice(&ph.p_offset.to_le_bytes());
            p.extend_from_slice(&ph.p_vaddr.to_le_bytes());
            p.extend_from_slice(&ph.p_vaddr.to_le_bytes()); // p_paddr
            p.extend_from_slice(&ph.p_filesz.to_le_bytes());
            p.extend_from_slice(&ph.p_memsz.to_le_bytes());
            p.extend_from_slice(&ph.p_align.to_le_bytes());
            put(&mut b, off, &p);
            off = off.saturating_add(56);
        }
        for (at, bytes) in &self.patches {
            put(&mut b, *at, bytes);
        }
        b
    }
}

/// Writes what fits; bytes past the end of the file are dropped (the file is "truncated").
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    for (i, &x) in bytes.iter().enumerate() {
        if let Some(slot) = at.checked_add(i).and_then(|j| b.get_mut(j)) {
            *slot = x;
        }
    }
}

/// A per-test scratch directory under the system's temporary directory, removed on drop.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    /// Creates `elf-min-<name>-<pid>` (the pid keeps parallel test binaries apart).
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("elf-min-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// Compiles `src` to `out` with `gcc FLAGS -o OUT SRC`. `false` (with a printed reason) only
/// when gcc is not installed: these tests compare with the running kernel and need a C
/// toolchain, which `cargo xtask test` provisions. A gcc that runs and fails is a broken test
/// and panics.
pub fn gcc(flags: &[&str], out: &std::path::Path, src: &std::path::Path) -> bool {
    match std::process::Command::new("gcc").args(flags).arg("-o").arg(out).arg(src).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!("gcc {flags:?} failed:\n{}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping: gcc is not installed (apt-get install gcc libc6-dev)");
            false
        }
        Err(e) => panic!("cannot run gcc: {e}"),
    }
}
