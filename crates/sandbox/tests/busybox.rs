//! Differential tests with Debian's busybox-static (`/bin/busybox`, package `busybox-static`, a
//! provisioned dependency): applets that do not fork, each run as `busybox APPLET ARGS` natively
//! and under `sandbox run` in identical working directories (the same fixture, with fixed
//! mtimes), with TZ=UTC and LC_ALL=C. Exit status, stdout and the working directory's tree
//! must be equal after every step; each test also checks the native result against what the
//! applet is known to do, so a sandbox that does nothing cannot pass.
#[macro_use]
mod common;

use common::{Cmd, Compared, assert_same_steps, write_file};
use std::path::Path;
use std::time::Duration;

const BUSYBOX: &str = "/bin/busybox";

/// Fails (not skips) unless /bin/busybox exists and is statically linked.
fn require_busybox() {
    let p = Path::new(BUSYBOX);
    match common::is_static_elf(p) {
        Ok(true) => {}
        Ok(false) => panic!(
            "{BUSYBOX} is not a static ELF executable; install the Debian package busybox-static \
             (a provisioned dependency of these tests: `cargo xtask test` installs it)"
        ),
        Err(e) => panic!(
            "{e}; install the Debian package busybox-static (a provisioned dependency of these \
             tests: `cargo xtask test` installs it)"
        ),
    }
}

/// Defines a test: KVM gate, busybox check, then the body.
macro_rules! bb_test {
    ($name:ident, $body:block) => {
        #[test]
        fn $name() {
            gated!($name);
            require_busybox();
            $body
        }
    };
}

/// `busybox ARGS...` with TZ=UTC and LC_ALL=C.
fn bb(args: &[&str]) -> Cmd {
    Cmd::new(BUSYBOX).args(args).env("TZ", "UTC").env("LC_ALL", "C")
}

const WORDS: [&str; 12] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu",
];

fn text() -> String {
    let mut s = String::new();
    for i in 0..120usize {
        s += &format!(
            "line {i:03} {} {} {}\n",
            WORDS[i % 12],
            (i * 7919) % 1000,
            WORDS[(i * 5) % 12]
        );
    }
    s
}

fn text2() -> String {
    text().replace("line 042 ", "line 042 CHANGED ").replace("line 100 ", "")
}

fn nums() -> String {
    (0..50usize).map(|i| format!("{}\n", (i * 7727 + 13) % 997)).collect()
}

fn words() -> String {
    (0..60usize).map(|i| format!("{}\n", WORDS[(i * i + 3) % 12])).collect()
}

fn words_sorted() -> String {
    let mut w: Vec<String> = words().lines().map(str::to_owned).collect();
    w.sort();
    w.iter().map(|l| format!("{l}\n")).collect()
}

fn to_base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && i % 76 == 0 {
            out.push('\n');
        }
        out.push(ch);
    }
    out.push('\n');
    out
}

fn bin() -> Vec<u8> {
    let mut b = common::pseudo_random(4096, 7);
    b[1008..1024].copy_from_slice(b"embedded-string!");
    b
}

/// The working directory every busybox test starts from.
fn fixture(dir: &Path) {
    write_file(dir, "text.txt", text());
    write_file(dir, "text2.txt", text2());
    write_file(dir, "nums.txt", nums());
    write_file(dir, "words.txt", words());
    write_file(dir, "words_sorted.txt", words_sorted());
    write_file(
        dir,
        "passwd.txt",
        "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/usr/sbin:/bin/false\nbin:x:2:2::/bin:/bin/false\nuser:x:1000:1000:A User,,,:/home/user:/bin/bash\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
    );
    write_file(dir, "tabs.txt", "a\tb\tc\n\tindented\nx\t\ty\nlong-field\tz\n");
    write_file(dir, "bin.dat", bin());
    let mut bin2 = bin();
    bin2[10] ^= 0xff;
    bin2[3000] ^= 0x01;
    write_file(dir, "bin2.dat", bin2);
    write_file(dir, "b64.txt", to_base64(&bin()));
    write_file(dir, "a.txt", "one\ntwo\nthree\n");
    write_file(
        dir,
        "fix.patch",
        "--- a.txt\n+++ a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
    );
    write_file(dir, "bad.md5", "00000000000000000000000000000000  text.txt\n");
    write_file(dir, "tree/a.txt", "a".repeat(100));
    write_file(dir, "tree/b.txt", &text()[..2000]);
    write_file(dir, "tree/c.bin", common::pseudo_random(5000, 3));
    write_file(dir, "tree/sub/d.txt", "gamma delta\n");
    write_file(dir, "tree/sub/e.txt", "gamma\n".repeat(250));
    write_file(dir, "tree/sub/deeper/f.txt", "deep\n");
    write_file(dir, "tree/exec.sh", "#!/bin/sh\necho hi\n");
    std::fs::create_dir(dir.join("tree/empty")).expect("mkdir tree/empty");
    std::os::unix::fs::symlink("a.txt", dir.join("tree/link")).expect("symlink");
    for f in [
        "text.txt",
        "text2.txt",
        "nums.txt",
        "words.txt",
        "words_sorted.txt",
        "passwd.txt",
        "tabs.txt",
        "bin.dat",
        "bin2.dat",
        "b64.txt",
        "a.txt",
        "fix.patch",
        "bad.md5",
        "tree/a.txt",
        "tree/b.txt",
        "tree/c.bin",
        "tree/sub/d.txt",
        "tree/sub/e.txt",
        "tree/sub/deeper/f.txt",
    ] {
        common::chmod(dir, f, 0o644);
    }
    common::chmod(dir, "tree/exec.sh", 0o755);
    for d in ["tree", "tree/sub", "tree/sub/deeper"] {
        common::chmod(dir, d, 0o755);
    }
    common::chmod(dir, "tree/empty", 0o700);
    common::set_mtimes_recursive(dir, common::FIXED_TIME);
}

/// Runs the steps both ways from the fixture and compares after each; every step must succeed
/// natively (so a step that only ever prints a usage error fails instead of comparing two
/// identical failures).
fn case(name: &str, steps: &[Cmd]) -> Compared {
    case_codes(name, steps, &vec![0; steps.len()])
}

/// Like [`case`] for steps with the native exit codes `codes`.
fn case_codes(name: &str, steps: &[Cmd], codes: &[i32]) -> Compared {
    let c = assert_same_steps(&format!("bb-{name}"), fixture, steps);
    assert_eq!(self::codes(&c), codes, "bb-{name}: native exit codes of the steps");
    c
}

/// The native stdout of step `i`.
fn out(c: &Compared, i: usize) -> String {
    c.steps[i].native.stdout_str()
}

/// The native exit codes of all steps.
fn codes(c: &Compared) -> Vec<i32> {
    c.steps.iter().map(|p| p.native.code().unwrap_or(-1)).collect()
}

bb_test!(cat, {
    let c = case(
        "cat",
        &[
            bb(&["cat", "text.txt", "nums.txt"]),
            bb(&["cat", "-n", "words.txt"]),
            bb(&["cat"]).stdin("from stdin\n"),
        ],
    );
    assert_eq!(out(&c, 0), text() + &nums());
    assert!(out(&c, 1).starts_with("     1\t"));
    assert_eq!(out(&c, 2), "from stdin\n");
});

bb_test!(wc, {
    let c = case(
        "wc",
        &[
            bb(&["wc", "text.txt", "nums.txt"]),
            bb(&["wc", "-l", "text.txt"]),
            bb(&["wc", "-c", "bin.dat"]),
            bb(&["wc", "-w"]).stdin("a b c\nd\n"),
        ],
    );
    assert_eq!(out(&c, 1), "120 text.txt\n");
    assert_eq!(out(&c, 2), "4096 bin.dat\n");
    assert_eq!(out(&c, 3).trim(), "4");
});

bb_test!(sort, {
    let c = case(
        "sort",
        &[
            bb(&["sort", "words.txt"]),
            bb(&["sort", "-n", "nums.txt"]),
            bb(&["sort", "-rn", "nums.txt"]),
            bb(&["sort", "-t:", "-k3,3n", "passwd.txt"]),
            bb(&["sort", "-u", "words.txt"]),
            bb(&["sort", "-o", "sorted.out", "text2.txt"]),
        ],
    );
    assert_eq!(out(&c, 0), words_sorted());
    let mut n: Vec<u32> = nums().lines().map(|l| l.parse().unwrap()).collect();
    n.sort();
    assert_eq!(out(&c, 1).lines().next().unwrap(), n[0].to_string());
    assert!(out(&c, 3).starts_with("root:"));
});

bb_test!(uniq, {
    let c = case(
        "uniq",
        &[
            bb(&["uniq", "-c", "words_sorted.txt"]),
            bb(&["uniq", "-d", "words_sorted.txt"]),
            bb(&["uniq", "words.txt"]),
        ],
    );
    // `uniq -c`: one line per distinct word, counts adding up to every input line.
    let sorted = words_sorted();
    let mut distinct: Vec<&str> = sorted.lines().collect();
    distinct.dedup();
    let counted = out(&c, 0);
    let counts: Vec<(usize, &str)> = counted
        .lines()
        .map(|l| {
            let (n, w) = l.trim_start().split_once(' ').expect("count and word");
            (n.parse().expect("a count"), w)
        })
        .collect();
    assert_eq!(counts.iter().map(|&(_, w)| w).collect::<Vec<_>>(), distinct);
    assert_eq!(counts.iter().map(|&(n, _)| n).sum::<usize>(), words().lines().count());
});

bb_test!(head, {
    let c = case(
        "head",
        &[
            bb(&["head", "-n", "5", "text.txt"]),
            bb(&["head", "-c", "100", "bin.dat"]),
            bb(&["head", "text.txt", "nums.txt"]),
        ],
    );
    assert_eq!(out(&c, 0), text().lines().take(5).map(|l| format!("{l}\n")).collect::<String>());
    assert_eq!(c.steps[1].native.stdout, bin()[..100]);
});

bb_test!(tail, {
    let c = case(
        "tail",
        &[
            bb(&["tail", "-n", "7", "text.txt"]),
            bb(&["tail", "-c", "50", "text.txt"]),
            bb(&["tail", "-n", "+115", "text.txt"]),
        ],
    );
    assert_eq!(out(&c, 0).lines().count(), 7);
    assert_eq!(out(&c, 2).lines().count(), 6);
});

bb_test!(cut, {
    let c = case(
        "cut",
        &[
            bb(&["cut", "-d:", "-f1,3", "passwd.txt"]),
            bb(&["cut", "-c", "2-5", "text.txt"]),
            bb(&["cut", "-f2", "tabs.txt"]),
        ],
    );
    assert!(out(&c, 0).starts_with("root:0\ndaemon:1\n"));
});

bb_test!(tr, {
    let c = case(
        "tr",
        &[
            bb(&["tr", "a-z", "A-Z"]).stdin(text()),
            bb(&["tr", "-d", "0-9"]).stdin(text()),
            bb(&["tr", "-s", " "]).stdin("a   b    c\n"),
        ],
    );
    assert_eq!(out(&c, 0), text().to_uppercase());
    assert_eq!(out(&c, 2), "a b c\n");
});

bb_test!(sed, {
    let c = case(
        "sed",
        &[
            bb(&["sed", "-n", "2,5p", "text.txt"]),
            bb(&["sed", "s/line/LINE/g", "text.txt"]),
            bb(&["sed", "-e", "/7/d", "-e", "s/^/> /", "text.txt"]),
            bb(&["sed", "-i", "s/alpha/ALPHA/", "words.txt"]),
        ],
    );
    assert_eq!(out(&c, 0).lines().count(), 4);
    let edited = std::fs::read_to_string(c.native_dir.join("words.txt")).unwrap();
    assert_eq!(edited, words().replace("alpha", "ALPHA"));
});

bb_test!(awk, {
    let c = case(
        "awk",
        &[
            bb(&["awk", "-F:", "{s+=$3} END {print s, NR}", "passwd.txt"]),
            bb(&["awk", "{print $2, length($0), toupper($3)}", "text.txt"]),
            bb(&[
                "awk",
                "BEGIN{for(i=1;i<=10;i++) printf \"%d %05.1f %s\\n\", i, i*i/2, substr(\"abcdefghij\",i,3)}",
            ]),
            bb(&["awk", "{print > \"out.txt\"} END {print NR}", "nums.txt"]),
            bb(&["awk", "{c[$1]++} END {n=0; for (k in c) n++; print n}", "words.txt"]),
        ],
    );
    assert_eq!(out(&c, 0), "66537 5\n");
    assert!(out(&c, 2).starts_with("1 000.5 abc\n2 002.0 bcd\n"));
    assert_eq!(std::fs::read_to_string(c.native_dir.join("out.txt")).unwrap(), nums());
});

bb_test!(grep, {
    let c = case_codes(
        "grep",
        &[
            bb(&["grep", "-n", "beta", "text.txt"]),
            bb(&["grep", "-c", "alpha", "words.txt"]),
            bb(&["grep", "-v", "a", "words.txt"]),
            bb(&["grep", "-r", "-l", "gamma", "tree"]),
            bb(&["grep", "-E", "^line 0[0-4]", "text.txt"]),
            bb(&["grep", "nomatch", "text.txt"]),
            bb(&["grep", "-i", "-w", "ALPHA", "words.txt"]),
            bb(&["grep", "-q", "alpha", "words.txt"]),
            bb(&["grep", "x", "missing-file"]),
        ],
        &[0, 0, 0, 0, 0, 1, 0, 0, 2],
    );
    assert!(out(&c, 0).starts_with("2:line 001 beta"));
    assert_eq!(out(&c, 4).lines().count(), 50);
});

bb_test!(md5sum, {
    let c = case_codes(
        "md5sum",
        &[
            bb(&["md5sum", "text.txt", "bin.dat"]),
            bb(&["md5sum"]).stdin(""),
            bb(&["md5sum", "-c", "bad.md5"]),
        ],
        &[0, 0, 1],
    );
    assert_eq!(out(&c, 1), "d41d8cd98f00b204e9800998ecf8427e  -\n");
});

bb_test!(md5sum_check, {
    // The checksums from the native run, fed back to both sides through stdin (`-c -`).
    let c = case("md5sum_check", &[bb(&["md5sum", "text.txt", "bin.dat"])]);
    let sums = out(&c, 0);
    let c = case("md5sum_check2", &[bb(&["md5sum", "-c", "-"]).stdin(sums)]);
    assert_eq!(out(&c, 0), "text.txt: OK\nbin.dat: OK\n");
});

bb_test!(sha1sum, {
    let c =
        case("sha1sum", &[bb(&["sha1sum", "text.txt", "bin.dat"]), bb(&["sha1sum"]).stdin("abc")]);
    assert_eq!(out(&c, 1), "a9993e364706816aba3e25717850c26c9cd0d89d  -\n");
});

bb_test!(sha256sum, {
    let c = case(
        "sha256sum",
        &[bb(&["sha256sum", "text.txt", "bin.dat"]), bb(&["sha256sum"]).stdin("abc")],
    );
    assert_eq!(out(&c, 1), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  -\n");
});

bb_test!(sha512sum, {
    let c = case("sha512sum", &[bb(&["sha512sum", "text.txt", "bin.dat"])]);
    assert_eq!(out(&c, 0).lines().count(), 2);
});

bb_test!(sha3sum, {
    let c = case(
        "sha3sum",
        &[bb(&["sha3sum", "text.txt", "bin.dat"]), bb(&["sha3sum", "-a", "512", "nums.txt"])],
    );
    assert_eq!(out(&c, 0).lines().count(), 2);
});

bb_test!(base64, {
    let c = case(
        "base64",
        &[
            bb(&["base64", "bin.dat"]),
            bb(&["base64", "-d", "b64.txt"]),
            bb(&["base64"]).stdin("hello, sandbox"),
        ],
    );
    assert_eq!(out(&c, 0), to_base64(&bin()));
    assert_eq!(c.steps[1].native.stdout, bin());
    assert_eq!(out(&c, 2), "aGVsbG8sIHNhbmRib3g=\n");
});

/// About 10 MiB of text from a fixed seed: compressible, but not trivially.
fn big_text() -> Vec<u8> {
    let r = common::pseudo_random(3 << 20, 99);
    let mut v = Vec::with_capacity(11 << 20);
    let mut i = 0;
    while v.len() < 10 << 20 {
        let w = WORDS[(r[i % r.len()] % 12) as usize];
        v.extend_from_slice(w.as_bytes());
        v.extend_from_slice(format!("{}", r[(i + 1) % r.len()] % 100).as_bytes());
        v.push(if r[(i + 2) % r.len()].is_multiple_of(9) { b'\n' } else { b' ' });
        i += 3;
    }
    v.truncate(10 << 20);
    v
}

bb_test!(gzip_gunzip_10mib, {
    let big = big_text();
    let slow = Duration::from_secs(180);
    let c = assert_same_steps(
        "bb-gzip",
        |d| {
            write_file(d, "big.bin", &big);
            common::set_mtime(&d.join("big.bin"), common::FIXED_TIME);
        },
        &[
            // Compressed bytes (and the mtime in the header) are compared in the tree.
            bb(&["gzip", "big.bin"]).timeout(slow),
            bb(&["gzip", "-t", "big.bin.gz"]).timeout(slow),
            bb(&["gunzip", "-c", "big.bin.gz"]).timeout(slow),
            bb(&["gunzip", "big.bin.gz"]).timeout(slow),
            bb(&["sha256sum", "big.bin"]).timeout(slow),
        ],
    );
    assert_eq!(codes(&c), [0, 0, 0, 0, 0]);
    assert!(c.steps[2].native.stdout == big, "gunzip -c gives the original back");
    assert!(std::fs::read(c.native_dir.join("big.bin")).unwrap() == big);
});

// (zcat is left out: busybox's zcat forks a decompressor child.)
bb_test!(gzip_stdin, {
    let c = case(
        "gzip_stdin",
        &[
            bb(&["gzip", "-c", "-9"]).stdin(text()),
            bb(&["gzip", "-k", "text.txt"]),
            bb(&["gzip", "-d", "-c", "text.txt.gz"]),
        ],
    );
    assert_eq!(&c.steps[0].native.stdout[..2], b"\x1f\x8b");
    assert_eq!(out(&c, 2), text());
});

bb_test!(bzip2, {
    let c = case(
        "bzip2",
        &[
            bb(&["bzip2", "-k", "text.txt"]),
            bb(&["bunzip2", "-c", "text.txt.bz2"]),
            bb(&["bzcat", "text.txt.bz2"]),
        ],
    );
    assert_eq!(out(&c, 1), text());
});

bb_test!(tar, {
    let c = case_codes(
        "tar",
        &[
            bb(&["tar", "-cf", "out.tar", "tree"]),
            bb(&["tar", "-tvf", "out.tar"]),
            bb(&["mkdir", "x"]),
            bb(&["tar", "-xf", "out.tar", "-C", "x"]),
            bb(&["tar", "-xOf", "out.tar", "tree/sub/d.txt"]),
        ],
        &[0, 0, 0, 0, 0],
    );
    assert!(out(&c, 1).contains("root/root"), "{}", out(&c, 1));
    assert_eq!(out(&c, 4), "gamma delta\n");
    let d = c.native_dir.path();
    assert_eq!(common::compare_trees(&d.join("tree"), &d.join("x/tree")), None);
});

bb_test!(ls, {
    let c = case_codes(
        "ls",
        &[
            bb(&["ls", "-la", "--full-time", "tree"]),
            bb(&["ls", "-1", "tree"]),
            bb(&["ls", "-lR", "tree"]),
            bb(&["ls", "-ln", "tree/sub"]),
            bb(&["ls", "-d", "-F", "tree", "tree/link", "tree/exec.sh", "tree/sub"]),
            bb(&["ls", "missing"]),
        ],
        &[0, 0, 0, 0, 0, 1],
    );
    assert!(out(&c, 0).contains("2020-09-13 12:26:40 +0000"), "{}", out(&c, 0));
    assert!(out(&c, 0).contains("link -> a.txt"));
    assert_eq!(out(&c, 1), "a.txt\nb.txt\nc.bin\nempty\nexec.sh\nlink\nsub\n");
});

bb_test!(stat, {
    let c = case_codes(
        "stat",
        &[
            bb(&[
                "stat",
                "-c",
                "%n %s %a %F %h %U %G %Y",
                "text.txt",
                "tree",
                "tree/link",
                "tree/empty",
            ]),
            bb(&["stat", "-L", "-c", "%n %s %F", "tree/link"]),
            bb(&["stat", "-c", "%n", "missing"]),
        ],
        &[0, 0, 1],
    );
    assert!(out(&c, 0).starts_with(&format!(
        "text.txt {} 644 regular file 1 root root 1600000000\n",
        text().len()
    )));
});

bb_test!(find, {
    let c = case(
        "find",
        &[
            bb(&["find", "tree"]),
            bb(&["find", "tree", "-type", "f", "-name", "*.txt"]),
            bb(&["find", "tree", "-size", "+1k"]),
            bb(&["find", "tree", "-type", "l"]),
            bb(&["find", "tree", "-mindepth", "2", "-type", "d"]),
            bb(&["find", "tree", "-maxdepth", "1", "-perm", "755"]),
            bb(&["find", "tree", "-empty"]),
        ],
    );
    assert_eq!(out(&c, 0).lines().count(), 12);
    assert_eq!(out(&c, 3), "tree/link\n");
});

bb_test!(du, {
    let c = case(
        "du",
        &[
            bb(&["du", "-s", "-k", "tree"]),
            bb(&["du", "-a", "-b", "tree"]),
            bb(&["du", "-c", "-k", "text.txt", "bin.dat"]),
        ],
    );
    assert!(out(&c, 1).contains("5000\ttree/c.bin\n"), "{}", out(&c, 1));
});

bb_test!(od, {
    let c = case(
        "od",
        &[
            bb(&["od", "-A", "x", "-t", "x1", "bin.dat"]),
            bb(&["od", "-c", "tabs.txt"]),
            bb(&["od", "-An", "-t", "d4", "-N", "64", "bin.dat"]),
        ],
    );
    assert!(out(&c, 1).starts_with("0000000   a  \\t   b  \\t   c  \\n"), "{}", out(&c, 1));
});

bb_test!(seq, {
    let c = case(
        "seq",
        &[
            bb(&["seq", "10"]),
            bb(&["seq", "1", "3", "100"]),
            bb(&["seq", "-w", "8", "12"]),
            bb(&["seq", "-s", ",", "5"]),
            bb(&["seq", "5", "-1", "1"]),
        ],
    );
    assert_eq!(out(&c, 3), "1,2,3,4,5\n");
    assert_eq!(out(&c, 2), "08\n09\n10\n11\n12\n");
});

bb_test!(expr, {
    let c = case_codes(
        "expr",
        &[
            bb(&["expr", "3", "+", "4", "*", "5"]),
            bb(&["expr", "length", "hello"]),
            bb(&["expr", "abcdef", ":", "a\\(..\\)"]),
            bb(&["expr", "0"]),
            bb(&["expr", "10", "/", "0"]),
            bb(&["expr", "7", "%", "3", "=", "1"]),
        ],
        &[0, 0, 0, 1, 2, 0],
    );
    assert_eq!(out(&c, 0), "23\n");
    assert_eq!(out(&c, 2), "bc\n");
});

bb_test!(printf, {
    let c = case(
        "printf",
        &[
            bb(&["printf", "%05d|%-5s|%x|%c|%o|%e\\n", "42", "ab", "255", "z", "8", "1.5"]),
            bb(&["printf", "%s\\n", "a", "b", "c"]),
            bb(&["printf", "\\101\\t\\x42\\n"]),
        ],
    );
    assert_eq!(out(&c, 0), "00042|ab   |ff|z|10|1.500000e+00\n");
    assert_eq!(out(&c, 1), "a\nb\nc\n");
});

bb_test!(date, {
    let c = case(
        "date",
        &[
            bb(&["date", "-u", "-d", "2021-03-04 05:06:07", "+%Y-%m-%d %H:%M:%S %j %a %s"]),
            bb(&["date", "-d", "@1234567890", "+%F %T %Z"]),
            bb(&["date", "-u", "-d", "2000-02-29", "+%A"]),
            bb(&["date", "-r", "text.txt", "+%s"]),
        ],
    );
    assert_eq!(out(&c, 0), "2021-03-04 05:06:07 063 Thu 1614834367\n");
    assert_eq!(out(&c, 1), "2009-02-13 23:31:30 UTC\n");
    assert_eq!(out(&c, 2), "Tuesday\n");
    assert_eq!(out(&c, 3), "1600000000\n");
});

bb_test!(date_now, {
    // The current time, as seconds: equal within a minute natively and sandboxed.
    let (n, _nd) = common::run_native(&bb(&["date", "+%s"]));
    let (s, _sd) = common::run_sandboxed(&bb(&["date", "+%s"]));
    let parse = |o: &common::Output| -> u64 {
        o.stdout_str().trim().parse().unwrap_or_else(|_| panic!("not a number\n{}", o.report()))
    };
    let (a, b) = (parse(&n), parse(&s));
    assert!(a.abs_diff(b) < 60, "native {a}, sandboxed {b}");
    assert!(a.abs_diff(common::now_secs()) < 60);
});

bb_test!(uname, {
    let c = case("uname", &[bb(&["uname", "-s", "-m", "-o"])]);
    assert_eq!(out(&c, 0), "Linux x86_64 GNU/Linux\n");
});

bb_test!(id, {
    let c = case(
        "id",
        &[bb(&["id"]), bb(&["id", "-u"]), bb(&["id", "-g"]), bb(&["id", "-un"]), bb(&["whoami"])],
    );
    // SAFETY: getuid cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    assert_eq!(out(&c, 1), format!("{uid}\n"));
});

bb_test!(env_cleared, {
    let c = case(
        "env_cleared",
        &[
            Cmd::new(BUSYBOX).arg("env").env_clear().env("A", "1").env("B", "two words"),
            Cmd::new(BUSYBOX).args(["env", "-u", "A"]).env_clear().env("A", "1").env("B", "2"),
        ],
    );
    assert_eq!(out(&c, 0), "A=1\nB=two words\n");
    assert_eq!(out(&c, 1), "B=2\n");
});

bb_test!(env_passthrough, {
    // The whole inherited environment, plus one variable, passes through unchanged.
    let c = case("env_passthrough", &[bb(&["env"]).env("SBXT_BUSYBOX", "passed through")]);
    assert!(out(&c, 0).contains("SBXT_BUSYBOX=passed through\n"));
    assert!(out(&c, 0).contains("TZ=UTC\n"));
});

bb_test!(env_option_adds, {
    // `--env K=V` without --env-clear adds to the inherited environment. Compared as sorted
    // lines: where the sandbox puts the new variable in the order is not specified.
    let cmd = bb(&["env"]).env("SBXT_ADDED", "by --env").env_flags();
    let (n, _nd) = common::run_native(&cmd);
    let (s, _sd) = common::run_sandboxed(&cmd);
    let sorted = |o: &common::Output| {
        let mut v: Vec<String> = o.stdout_str().lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(n.code(), Some(0));
    assert_eq!(s.code(), Some(0), "{}", s.report());
    assert_eq!(sorted(&n), sorted(&s), "\n{}\n{}", n.report(), s.report());
    assert!(s.stdout_str().contains("SBXT_ADDED=by --env\n"));
});

bb_test!(true_false, {
    case_codes(
        "true_false",
        &[bb(&["true"]), bb(&["false"]), bb(&["true", "ignored", "args"])],
        &[0, 1, 0],
    );
});

bb_test!(dd, {
    let c = case(
        "dd",
        &[
            bb(&["dd", "if=bin.dat", "of=out.bin", "bs=512", "skip=2", "count=5"]),
            bb(&["dd", "if=text.txt", "of=bin.dat", "bs=100", "seek=3", "count=2", "conv=notrunc"]),
            bb(&["dd", "if=text.txt", "bs=1", "count=20"]),
            bb(&["dd", "if=/dev/zero", "of=zeros", "bs=1024", "count=64"]),
        ],
    );
    assert_eq!(std::fs::read(c.native_dir.join("out.bin")).unwrap(), bin()[1024..3584]);
    assert_eq!(out(&c, 2), text()[..20]);
    assert_eq!(std::fs::metadata(c.native_dir.join("zeros")).unwrap().len(), 65536);
});

bb_test!(cmp, {
    let c = case_codes(
        "cmp",
        &[
            bb(&["cmp", "text.txt", "text.txt"]),
            bb(&["cmp", "text.txt", "text2.txt"]),
            bb(&["cmp", "-l", "bin.dat", "bin2.dat"]),
            bb(&["cmp", "-s", "bin.dat", "bin2.dat"]),
        ],
        &[0, 1, 1, 1],
    );
    assert!(out(&c, 1).starts_with("text.txt text2.txt differ: char "), "{}", out(&c, 1));
    assert_eq!(out(&c, 2).lines().count(), 2);
});

bb_test!(cp, {
    let c = case_codes(
        "cp",
        &[
            bb(&["cp", "text.txt", "copy.txt"]),
            bb(&["cp", "-r", "tree", "tree2"]),
            bb(&["cp", "-p", "bin.dat", "bin.keep"]),
            bb(&["cp", "-a", "tree", "tree3"]),
            bb(&["stat", "-c", "%n %Y %a", "bin.keep", "tree3/exec.sh", "tree3/empty"]),
            bb(&["cp", "missing", "x"]),
        ],
        &[0, 0, 0, 0, 0, 1],
    );
    assert_eq!(
        out(&c, 4),
        "bin.keep 1600000000 644\ntree3/exec.sh 1600000000 755\ntree3/empty 1600000000 700\n"
    );
    let d = c.native_dir.path();
    assert_eq!(common::compare_trees(&d.join("tree"), &d.join("tree3")), None);
});

bb_test!(mv, {
    let c = case_codes(
        "mv",
        &[
            bb(&["mv", "text.txt", "moved.txt"]),
            bb(&["mv", "tree/sub", "tree/sub2"]),
            bb(&["mv", "nums.txt", "tree/"]),
            bb(&["mv", "missing", "x"]),
        ],
        &[0, 0, 0, 1],
    );
    assert!(c.native_dir.join("tree/sub2/deeper/f.txt").exists());
});

bb_test!(rm, {
    let c = case_codes(
        "rm",
        &[
            bb(&["rm", "text.txt"]),
            bb(&["rm", "-r", "tree/sub"]),
            bb(&["rm", "missing"]),
            bb(&["rm", "-f", "missing"]),
            bb(&["rm", "tree"]),
            bb(&["rm", "-rf", "tree"]),
        ],
        &[0, 0, 1, 0, 1, 0],
    );
    assert!(!c.native_dir.join("tree").exists());
});

bb_test!(mkdir_rmdir, {
    case_codes(
        "mkdir",
        &[
            bb(&["mkdir", "-p", "a/b/c"]),
            bb(&["mkdir", "-m", "700", "d"]),
            bb(&["mkdir", "a"]),
            bb(&["rmdir", "a/b/c"]),
            bb(&["rmdir", "a"]),
            bb(&["rmdir", "-p", "a/b"]),
        ],
        &[0, 0, 1, 0, 1, 0],
    );
});

bb_test!(ln, {
    let c = case_codes(
        "ln",
        &[
            bb(&["ln", "-s", "text.txt", "sym"]),
            bb(&["ln", "text.txt", "hard"]),
            bb(&["ln", "-s", "missing", "dangling"]),
            bb(&["readlink", "sym"]),
            bb(&["stat", "-c", "%h", "text.txt"]),
            bb(&["ln", "text.txt", "hard"]),
            bb(&["link", "nums.txt", "nums2"]),
            bb(&["unlink", "nums2"]),
        ],
        &[0, 0, 0, 0, 0, 1, 0, 0],
    );
    assert_eq!(out(&c, 4), "2\n");
});

bb_test!(readlink_realpath, {
    let c = case_codes(
        "readlink",
        &[
            bb(&["readlink", "tree/link"]),
            bb(&["readlink", "-f", "tree/link"]),
            bb(&["readlink", "text.txt"]),
            bb(&["realpath", "tree/link", "tree/../text.txt"]),
        ],
        &[0, 0, 1, 0],
    );
    assert_eq!(out(&c, 0), "a.txt\n");
    // Paths inside the working directory are compared as $WORK/...
    assert!(out(&c, 1).ends_with("/tree/a.txt\n"));
});

bb_test!(touch, {
    let c = case(
        "touch",
        &[
            bb(&["touch", "-d", "2020-01-02 03:04:05", "text.txt"]),
            bb(&["stat", "-c", "%Y", "text.txt"]),
            bb(&["touch", "newfile"]),
            bb(&["touch", "-c", "nonexistent"]),
            bb(&["stat", "-c", "%s %n", "newfile"]),
        ],
    );
    assert_eq!(out(&c, 1), "1577934245\n");
    assert!(!c.native_dir.join("nonexistent").exists());
});

bb_test!(truncate, {
    let c = case(
        "truncate",
        &[
            bb(&["truncate", "-s", "1000", "text.txt"]),
            bb(&["truncate", "-s", "10", "nums.txt"]),
            bb(&["truncate", "-s", "5M", "sparse"]),
            bb(&["stat", "-c", "%s %n", "text.txt", "nums.txt", "sparse"]),
        ],
    );
    assert_eq!(out(&c, 3), "1000 text.txt\n10 nums.txt\n5242880 sparse\n");
});

bb_test!(basename_dirname, {
    let c = case(
        "basename",
        &[
            bb(&["basename", "/a/b/c.txt", ".txt"]),
            bb(&["basename", "/a/b/"]),
            bb(&["dirname", "/a/b/c"]),
            bb(&["dirname", "c"]),
        ],
    );
    assert_eq!([out(&c, 0), out(&c, 1), out(&c, 2), out(&c, 3)], ["c\n", "b\n", "/a/b\n", ".\n"]);
});

bb_test!(factor, {
    let c = case("factor", &[bb(&["factor", "1234567890", "97", "1000000007", "600851475143"])]);
    assert!(out(&c, 0).starts_with("1234567890: 2 3 3 5 3607 3803\n"), "{}", out(&c, 0));
});

bb_test!(fold, {
    let c = case(
        "fold",
        &[bb(&["fold", "-w", "20", "text.txt"]), bb(&["fold", "-s", "-w", "15", "text.txt"])],
    );
    let folded = out(&c, 0);
    assert!(folded.lines().all(|l| l.len() <= 20));
    // Folding only inserts line breaks.
    assert_eq!(folded.replace('\n', ""), text().replace('\n', ""));
});

bb_test!(nl, {
    let c = case("nl", &[bb(&["nl", "text.txt"]), bb(&["nl", "-ba", "-w3", "-s:", "words.txt"])]);
    assert!(out(&c, 1).starts_with("  1:"));
});

bb_test!(paste, {
    let c = case(
        "paste",
        &[bb(&["paste", "nums.txt", "words.txt"]), bb(&["paste", "-s", "-d,", "nums.txt"])],
    );
    assert_eq!(out(&c, 1).matches(',').count(), 49);
});

bb_test!(rev, {
    let c = case("rev", &[bb(&["rev", "text.txt"])]);
    assert!(
        out(&c, 0).starts_with(&text().lines().next().unwrap().chars().rev().collect::<String>())
    );
});

bb_test!(tac, {
    let c = case("tac", &[bb(&["tac", "text.txt"])]);
    let t = text();
    let mut lines: Vec<&str> = t.lines().collect();
    lines.reverse();
    assert_eq!(out(&c, 0), lines.iter().map(|l| format!("{l}\n")).collect::<String>());
});

bb_test!(tee, {
    let c = case(
        "tee",
        &[bb(&["tee", "out1", "out2"]).stdin(text()), bb(&["tee", "-a", "out1"]).stdin("more\n")],
    );
    assert_eq!(out(&c, 0), text());
    assert_eq!(std::fs::read_to_string(c.native_dir.join("out1")).unwrap(), text() + "more\n");
});

bb_test!(xxd, {
    let c = case(
        "xxd",
        &[
            bb(&["xxd", "bin.dat"]),
            bb(&["xxd", "-p", "bin.dat"]),
            bb(&["xxd", "-s", "16", "-c", "8", "-g", "2", "a.txt"]),
        ],
    );
    assert_eq!(out(&c, 0).lines().count(), 256);
});

bb_test!(hexdump, {
    let c = case(
        "hexdump",
        &[bb(&["hexdump", "-C", "bin.dat"]), bb(&["hexdump", "-n", "64", "-x", "bin.dat"])],
    );
    assert!(out(&c, 0).contains("|embedded-string!|"), "{}", out(&c, 0));
});

bb_test!(diff, {
    let c = case_codes(
        "diff",
        &[
            bb(&["diff", "-u", "text.txt", "text2.txt"]),
            bb(&["diff", "text.txt", "text.txt"]),
            bb(&["diff", "-q", "bin.dat", "bin2.dat"]),
        ],
        &[1, 0, 1],
    );
    assert!(out(&c, 0).starts_with("--- text.txt\n+++ text2.txt\n"), "{}", out(&c, 0));
});

bb_test!(patch, {
    let c = case("patch", &[bb(&["patch", "-p0", "-i", "fix.patch"])]);
    assert_eq!(std::fs::read_to_string(c.native_dir.join("a.txt")).unwrap(), "one\nTWO\nthree\n");
});

bb_test!(expand_unexpand, {
    let c = case(
        "expand",
        &[
            bb(&["expand", "tabs.txt"]),
            bb(&["expand", "-t", "4", "tabs.txt"]),
            bb(&["unexpand", "-a"]).stdin("a       b\n        c\n"),
        ],
    );
    assert_eq!(out(&c, 1).lines().next(), Some("a   b   c"));
});

bb_test!(crc32, {
    let c = case("crc32", &[bb(&["crc32", "bin.dat", "text.txt"])]);
    assert_eq!(out(&c, 0).lines().count(), 2);
});

bb_test!(sleep, {
    let c = case_codes(
        "sleep",
        &[bb(&["sleep", "0"]), bb(&["sleep", "0.05"]), bb(&["usleep", "1000"])],
        &[0, 0, 0],
    );
    assert!(c.steps[1].native.elapsed >= Duration::from_millis(50));
    assert!(c.steps[1].sandboxed.elapsed >= Duration::from_millis(50));
});

bb_test!(test_applet, {
    case_codes(
        "test",
        &[
            bb(&["test", "-f", "text.txt"]),
            bb(&["test", "-d", "text.txt"]),
            bb(&["test", "3", "-lt", "4"]),
            bb(&["test", "abc", "=", "abd"]),
            bb(&["[", "-e", "tree", "]"]),
            bb(&["test", "-L", "tree/link"]),
            bb(&["test", "-x", "text.txt"]),
            bb(&["test", "-s", "tree/empty"]),
        ],
        &[0, 1, 0, 1, 0, 0, 1, 0],
    );
});

bb_test!(which, {
    let c = case_codes(
        "which",
        &[
            bb(&["which", "busybox"]).env("PATH", "/usr/bin:/bin"),
            bb(&["which", "no-such-program-here"]).env("PATH", "/usr/bin:/bin"),
        ],
        &[0, 1],
    );
    assert!(out(&c, 0).ends_with("/busybox\n"));
});

bb_test!(pwd_echo, {
    let c = case(
        "pwd",
        &[
            bb(&["pwd"]),
            bb(&["echo", "-n", "hi"]),
            bb(&["echo", "-e", "a\\tb\\n"]),
            bb(&["echo", "a", "b", "c"]),
        ],
    );
    // The working directory is compared as $WORK: the native path is that of its own dir.
    assert_eq!(out(&c, 0).trim_end(), c.native_dir.path().to_str().unwrap());
    assert_eq!(out(&c, 1), "hi");
    assert_eq!(out(&c, 2), "a\tb\n\n");
});

bb_test!(chmod, {
    let c = case(
        "chmod",
        &[
            bb(&["chmod", "600", "text.txt"]),
            bb(&["chmod", "-R", "g+w", "tree"]),
            bb(&["chmod", "u+x,o-r", "nums.txt"]),
            bb(&["stat", "-c", "%a %n", "text.txt", "nums.txt", "tree/sub/d.txt"]),
        ],
    );
    assert_eq!(out(&c, 3), "600 text.txt\n740 nums.txt\n664 tree/sub/d.txt\n");
});

bb_test!(mkfifo_fallocate_sync, {
    let c = case(
        "mkfifo",
        &[
            bb(&["mkfifo", "-m", "640", "pipe"]),
            bb(&["stat", "-c", "%F %a", "pipe"]),
            bb(&["fallocate", "-l", "1048576", "alloc"]),
            bb(&["stat", "-c", "%s", "alloc"]),
            bb(&["sync"]),
        ],
    );
    assert_eq!(out(&c, 1), "fifo 640\n");
    assert_eq!(out(&c, 3), "1048576\n");
});

bb_test!(bc_dc, {
    let c =
        case("bc", &[bb(&["bc"]).stdin("scale=5; 10/3\n2^100\n"), bb(&["dc", "-e", "2 64 ^ p"])]);
    assert_eq!(out(&c, 0), "3.33333\n1267650600228229401496703205376\n");
    assert_eq!(out(&c, 1), "18446744073709551616\n");
});

bb_test!(cal, {
    let c = case("cal", &[bb(&["cal", "2", "2024"])]);
    assert!(out(&c, 0).contains("25 26 27 28 29"));
});

bb_test!(dos2unix_unix2dos, {
    let c = case(
        "dos2unix",
        &[
            bb(&["unix2dos", "words.txt"]),
            bb(&["cat", "words.txt"]),
            bb(&["dos2unix", "words.txt"]),
        ],
    );
    assert!(out(&c, 1).starts_with(&format!("{}\r\n", words().lines().next().unwrap())));
    assert_eq!(std::fs::read_to_string(c.native_dir.join("words.txt")).unwrap(), words());
});

bb_test!(uuencode_uudecode, {
    let c = case(
        "uuencode",
        &[bb(&["uuencode", "bin.dat", "restored.dat"]), bb(&["uuencode", "-m", "a.txt", "a"])],
    );
    let encoded = c.steps[0].native.stdout.clone();
    assert!(encoded.starts_with(b"begin 644 restored.dat\n"));
    let c = case("uudecode", &[bb(&["uudecode"]).stdin(encoded)]);
    assert_eq!(std::fs::read(c.native_dir.join("restored.dat")).unwrap(), bin());
});

bb_test!(getopt_strings, {
    let c = case(
        "getopt",
        &[
            bb(&["getopt", "-o", "ab:c", "-l", "long:", "--", "-a", "-b", "x", "--long=y", "z"]),
            bb(&["strings", "-n", "8", "bin.dat"]),
        ],
    );
    assert_eq!(out(&c, 0), " -a -b 'x' --long 'y' -- 'z'\n");
    assert!(out(&c, 1).contains("embedded-string!"));
});

bb_test!(tty_not_a_tty, {
    let c = case_codes("tty", &[bb(&["tty"])], &[1]);
    assert_eq!(out(&c, 0), "not a tty\n");
});

bb_test!(found_through_path, {
    // `sandbox run busybox true`: PROGRAM without a slash is looked up in PATH.
    let c = case(
        "path",
        &[Cmd::new("busybox").args(["echo", "via PATH"]).env("PATH", "/nonexistent:/usr/bin:/bin")],
    );
    assert_eq!(out(&c, 0), "via PATH\n");
});
