//! The receive filter: a classic BPF socket filter, compiled from the firewall's `receive`
//! decisions, that the kernel runs on every datagram arriving at a UDP socket of the
//! program's (`SO_ATTACH_FILTER`). A datagram whose sender the policy denies is dropped before
//! any system call can return it, so every way of reading the socket (`recvfrom`, `recvmsg`,
//! `recvmmsg`, `read`, `readv`, ...) is covered without a check per call: calls on connected
//! sockets cost nothing extra.
//!
//! The program is the firewall's first-match walk over the rules that can match a UDP
//! `receive` (IP targets whose protocol is `udp` or `any`), then the default:
//!
//! ```text
//! M[1] = IP version (network header byte 0 >> 4); M[0] = IPv4 source; M[2..6] = IPv6 source
//! IPv6 sources that are IPv4-mapped or -compatible: M[0] = their IPv4 address, M[1] = 4
//! M[6] = source port, M[7] = destination port (UDP header, at the packet data's offset 0)
//! rule i:  family, address & mask == network (any of the rule's networks), ports, local ports
//!          → return 0xffffffff (keep) or 0 (drop)
//! default → keep or drop
//! ```
//!
//! Loads from the network header use the `SKF_NET_OFF` base; at the time the filter runs on a
//! UDP socket the packet data starts at the UDP header (net/ipv4/udp.c
//! `udp_queue_rcv_one_skb`, net/ipv6/udp.c). Every conditional jump goes through an
//! unconditional `ja` (32-bit offsets), so rule lists of any length assemble; `BPF_MAXINSNS`
//! (4096) bounds them.

use ipnet::IpNet;

use super::Action;
use super::endpoint::Op;
use super::firewall::{NetPolicy, Protocol, Target};

/// One `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    /// `code`.
    pub code: u16,
    /// `jt`.
    pub jt: u8,
    /// `jf`.
    pub jf: u8,
    /// `k`.
    pub k: u32,
}

const LD: u16 = 0x00;
const ST: u16 = 0x02;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const AND: u16 = 0x50;
const RSH: u16 = 0x70;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const K: u16 = 0x00;
/// `SKF_NET_OFF`: loads relative to the network header.
const NET: u32 = (-0x100000i32) as u32;
/// The most instructions a filter may have (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

const KEEP: u32 = u32::MAX;
const DROP: u32 = 0;

/// An instruction whose jump target is still a label.
#[derive(Clone, Copy)]
enum Item {
    Insn(Insn),
    /// `if (A op k) == when goto label` (two instructions: the test, then `ja`).
    Jump {
        op: u16,
        k: u32,
        when: bool,
        label: usize,
    },
    /// `goto label`.
    Goto(usize),
    Label(usize),
}

#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn place(&mut self, l: usize) {
        self.items.push(Item::Label(l));
    }
    fn op(&mut self, code: u16, k: u32) {
        self.items.push(Item::Insn(Insn { code, jt: 0, jf: 0, k }));
    }
    fn ld_mem(&mut self, m: u32) {
        self.op(LD | MEM, m);
    }
    fn st(&mut self, m: u32) {
        self.op(ST, m);
    }
    fn if_goto(&mut self, op: u16, k: u32, when: bool, label: usize) {
        self.items.push(Item::Jump { op, k, when, label });
    }
    fn goto(&mut self, label: usize) {
        self.items.push(Item::Goto(label));
    }
    fn ret(&mut self, k: u32) {
        self.op(RET | K, k);
    }

    fn assemble(&self) -> Vec<Insn> {
        // Positions: a Jump is two instructions, a Goto one, a Label none.
        let mut at = vec![0usize; self.labels];
        let mut pc = 0;
        for it in &self.items {
            match it {
                Item::Insn(_) | Item::Goto(_) => pc += 1,
                Item::Jump { .. } => pc += 2,
                Item::Label(l) => at[*l] = pc,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for it in &self.items {
            match *it {
                Item::Insn(i) => out.push(i),
                Item::Label(_) => {}
                Item::Goto(l) => {
                    let k = (at[l] - (out.len() + 1)) as u32;
                    out.push(Insn { code: JMP | JA, jt: 0, jf: 0, k });
                }
                Item::Jump { op, k, when, label } => {
                    // True: fall into the `ja` (jt 0) or skip it (jt 1).
                    let (jt, jf) = if when { (0, 1) } else { (1, 0) };
                    out.push(Insn { code: JMP | op | K, jt, jf, k });
                    let k = (at[label] - (out.len() + 1)) as u32;
                    out.push(Insn { code: JMP | JA, jt: 0, jf: 0, k });
                }
            }
        }
        out
    }
}

fn mask(prefix: u8, word: usize) -> u32 {
    let bits = (i32::from(prefix) - 32 * word as i32).clamp(0, 32) as u32;
    if bits == 0 { 0 } else { u32::MAX << (32 - bits) }
}

/// The filter for `net`'s `receive` decisions on UDP sockets; `None` when the rules need more
/// than [`MAX_INSNS`] instructions.
pub fn receive_filter(net: &NetPolicy) -> Option<Vec<Insn>> {
    let mut a = Asm::default();
    let (v4, v6, common, mapped) = (a.label(), a.label(), a.label(), a.label());
    // The kernel refuses a load from scratch memory no path stored to (bpf_check_classic):
    // every slot used is set first.
    a.op(LD | IMM, 0);
    for m in [0, 2, 3, 4, 5, 6, 7] {
        a.st(m);
    }
    a.op(LD | B | ABS, NET);
    a.op(ALU | RSH | K, 4);
    a.st(1);
    a.if_goto(JEQ, 4, true, v4);
    a.if_goto(JEQ, 6, true, v6);
    a.ret(DROP);
    a.place(v4);
    a.op(LD | W | ABS, NET.wrapping_add(12));
    a.st(0);
    a.goto(common);
    a.place(v6);
    for w in 0..4u32 {
        a.op(LD | W | ABS, NET.wrapping_add(8 + 4 * w));
        a.st(2 + w);
    }
    let v6fam = common;
    a.ld_mem(2);
    a.if_goto(JEQ, 0, false, v6fam);
    a.ld_mem(3);
    a.if_goto(JEQ, 0, false, v6fam);
    a.ld_mem(4);
    a.if_goto(JEQ, 0xffff, true, mapped);
    a.if_goto(JEQ, 0, false, v6fam);
    a.ld_mem(5);
    a.if_goto(JEQ, 0, true, v6fam);
    a.if_goto(JEQ, 1, true, v6fam);
    a.place(mapped);
    a.ld_mem(5);
    a.st(0);
    a.op(LD | IMM, 4);
    a.st(1);
    a.place(common);
    a.op(LD | H | ABS, 0);
    a.st(6);
    a.op(LD | H | ABS, 2);
    a.st(7);
    for rule in &net.rules {
        let Target::Ip { nets, ports } = &rule.target else { continue };
        if !rule.ops.has(Op::Receive) || rule.protocol == Protocol::Tcp {
            continue;
        }
        let (next, port_check) = (a.label(), a.label());
        for n in nets {
            let other = a.label();
            match n {
                IpNet::V4(n) => {
                    a.ld_mem(1);
                    a.if_goto(JEQ, 4, false, other);
                    if n.prefix_len() > 0 {
                        a.ld_mem(0);
                        a.op(ALU | AND | K, mask(n.prefix_len(), 0));
                        a.if_goto(JEQ, u32::from(n.network()), false, other);
                    }
                }
                IpNet::V6(n) => {
                    a.ld_mem(1);
                    a.if_goto(JEQ, 6, false, other);
                    let o = n.network().octets();
                    for w in 0..4 {
                        let m = mask(n.prefix_len(), w);
                        if m == 0 {
                            continue;
                        }
                        let word = u32::from_be_bytes(o[4 * w..4 * w + 4].try_into().unwrap());
                        a.ld_mem(2 + w as u32);
                        a.op(ALU | AND | K, m);
                        a.if_goto(JEQ, word & m, false, other);
                    }
                }
            }
            a.goto(port_check);
            a.place(other);
        }
        a.goto(next);
        a.place(port_check);
        for (mem, range) in [(6, Some(*ports)), (7, rule.local_ports)] {
            let Some(r) = range.filter(|r| !r.is_any()) else { continue };
            a.ld_mem(mem);
            a.if_goto(JGE, u32::from(r.lo), false, next);
            a.if_goto(JGT, u32::from(r.hi), true, next);
        }
        a.ret(if matches!(rule.action, Action::Deny(_)) { DROP } else { KEEP });
        a.place(next);
    }
    a.ret(if matches!(net.default, Action::Deny(_)) { DROP } else { KEEP });
    let prog = a.assemble();
    (prog.len() <= MAX_INSNS).then_some(prog)
}

/// Runs `prog` the way the kernel's classic BPF interpreter would on a packet with network
/// header `net` and data (from the UDP header) `data`: the kept length, 0 for a drop. For
/// tests; loads outside the buffers drop, as in the kernel.
pub fn run(prog: &[Insn], net: &[u8], data: &[u8]) -> u32 {
    let mut a: u32 = 0;
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let load = |k: u32, size: usize| -> Option<u32> {
        let (buf, off) = if k >= NET { (net, (k - NET) as usize) } else { (data, k as usize) };
        let b = buf.get(off..off + size)?;
        Some(b.iter().fold(0u32, |v, &x| (v << 8) | u32::from(x)))
    };
    while let Some(i) = prog.get(pc) {
        pc += 1;
        match i.code {
            c if c == LD | B | ABS => match load(i.k, 1) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | H | ABS => match load(i.k, 2) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | W | ABS => match load(i.k, 4) {
                Some(v) => a = v,
                None => return 0,
            },
            c if c == LD | IMM => a = i.k,
            c if c == LD | MEM => a = mem[i.k as usize],
            ST => mem[i.k as usize] = a,
            c if c == ALU | RSH | K => a >>= i.k,
            c if c == ALU | AND | K => a &= i.k,
            c if c == JMP | JA => pc += i.k as usize,
            c if c & 0x07 == JMP => {
                let t = match c & 0xf0 {
                    JEQ => a == i.k,
                    JGT => a > i.k,
                    JGE => a >= i.k,
                    _ => return 0,
                };
                pc += usize::from(if t { i.jt } else { i.jf });
            }
            c if c == RET | K => return i.k,
            _ => return 0,
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::policy::endpoint::{Endpoint, Transport};
    use crate::policy::firewall::{NetRule, Ops, PortRange, Request, canonical_net};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn packet(src: IpAddr, sport: u16, dport: u16) -> (Vec<u8>, Vec<u8>) {
        let net = match src {
            IpAddr::V4(a) => {
                let mut h = vec![0x45u8; 20];
                h[12..16].copy_from_slice(&a.octets());
                h
            }
            IpAddr::V6(a) => {
                let mut h = vec![0u8; 40];
                h[0] = 0x60;
                h[8..24].copy_from_slice(&a.octets());
                h
            }
        };
        let mut udp = vec![0u8; 8];
        udp[0..2].copy_from_slice(&sport.to_be_bytes());
        udp[2..4].copy_from_slice(&dport.to_be_bytes());
        (net, udp)
    }

    fn policy(rules: Vec<NetRule>, default: Action) -> NetPolicy {
        NetPolicy { default, default_label: "d".into(), rules, sockets: vec![] }
    }

    fn rule(
        action: Action,
        op: Op,
        proto: Protocol,
        nets: &[&str],
        ports: PortRange,
        local: Option<PortRange>,
    ) -> NetRule {
        let nets = nets.iter().map(|n| canonical_net(n.parse().unwrap())).collect();
        NetRule::new("r".into(), action, Ops::of(op), proto, Target::Ip { nets, ports }, local)
    }

    fn engine_keeps(p: &NetPolicy, src: IpAddr, sport: u16, dport: u16) -> bool {
        let ep = Endpoint::Ip(crate::policy::endpoint::canonical_ip(src), sport);
        let r = Request {
            op: Op::Receive,
            transport: Transport::Udp,
            endpoint: &ep,
            local_port: Some(dport),
            datagram: false,
        };
        !matches!(p.decide(&r), Action::Deny(_))
    }

    #[test]
    fn filter_agrees_with_the_engine_on_examples() {
        let p = policy(
            vec![
                rule(
                    Action::Deny(Errno::EACCES),
                    Op::Receive,
                    Protocol::Udp,
                    &["10.0.0.66/32"],
                    PortRange::ANY,
                    None,
                ),
                rule(
                    Action::Allow,
                    Op::Send,
                    Protocol::Any,
                    &["10.0.0.0/8", "fd00::/8"],
                    PortRange::one(53),
                    None,
                ),
                rule(
                    Action::Allow,
                    Op::Receive,
                    Protocol::Udp,
                    &["any"].map(|_| "0.0.0.0/0"),
                    PortRange::ANY,
                    Some(PortRange::one(5353)),
                ),
                rule(
                    Action::Allow,
                    Op::Receive,
                    Protocol::Tcp,
                    &["0.0.0.0/0"],
                    PortRange::ANY,
                    None,
                ),
            ],
            Action::Deny(Errno::EACCES),
        );
        let prog = receive_filter(&p).unwrap();
        let cases: &[(&str, u16, u16, bool)] = &[
            ("10.1.1.1", 53, 40000, true),
            ("10.1.1.1", 54, 40000, false),
            ("10.0.0.66", 53, 40000, false),
            ("::ffff:10.1.1.1", 53, 40000, true),
            ("::10.1.1.1", 53, 40000, true),
            ("fd12::1", 53, 1, true),
            ("fe80::1", 53, 1, false),
            ("192.168.1.1", 1234, 5353, true),
            ("192.168.1.1", 1234, 5354, false),
            ("::1", 53, 1, false),
        ];
        for &(src, sport, dport, keep) in cases {
            let src: IpAddr = src.parse().unwrap();
            let (net, data) = packet(src, sport, dport);
            assert_eq!(run(&prog, &net, &data) != 0, keep, "{src} {sport} {dport}");
            assert_eq!(engine_keeps(&p, src, sport, dport), keep, "engine {src} {sport} {dport}");
        }
    }

    #[test]
    fn long_rule_lists_assemble() {
        let rules: Vec<NetRule> = (0..200)
            .map(|i| {
                rule(
                    Action::Allow,
                    Op::Receive,
                    Protocol::Any,
                    &[&format!("10.{}.0.0/16", i % 256)],
                    PortRange::one(i as u16),
                    None,
                )
            })
            .collect();
        let p = policy(rules, Action::Deny(Errno::EACCES));
        let prog = receive_filter(&p).unwrap();
        assert!(prog.len() > 1024, "jumps longer than 255 instructions: {}", prog.len());
        let (net, data) = packet("10.199.1.1".parse().unwrap(), 199, 9);
        assert_ne!(run(&prog, &net, &data), 0);
        let (net, data) = packet("10.199.1.1".parse().unwrap(), 198, 9);
        assert_eq!(run(&prog, &net, &data), 0);
    }

    fn arb_ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::new(10, o[1] & 3, o[2] & 1, o[3]))),
            any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o))),
            any::<[u8; 2]>().prop_map(|o| IpAddr::V6(Ipv6Addr::new(
                0xfd00,
                0,
                0,
                0,
                0,
                0,
                0,
                u16::from_be_bytes(o)
            ))),
        ]
    }

    fn arb_net() -> impl Strategy<Value = IpNet> {
        (arb_ip(), 0u8..=128).prop_map(|(ip, p)| {
            let p = if ip.is_ipv4() { p % 33 } else { p };
            canonical_net(IpNet::new(ip, p).unwrap())
        })
    }

    fn arb_ports() -> impl Strategy<Value = PortRange> {
        prop_oneof![
            Just(PortRange::ANY),
            (0u16..100, 0u16..100).prop_map(|(a, b)| PortRange { lo: a.min(b), hi: a.max(b) })
        ]
    }

    fn arb_rule() -> impl Strategy<Value = NetRule> {
        (
            prop_oneof![Just(Action::Allow), Just(Action::Log), Just(Action::Deny(Errno::EACCES))],
            prop_oneof![Just(Op::Receive), Just(Op::Send), Just(Op::Connect), Just(Op::Bind)],
            prop_oneof![Just(Protocol::Udp), Just(Protocol::Any), Just(Protocol::Tcp)],
            prop::collection::vec(arb_net(), 1..3),
            arb_ports(),
            prop::option::of(arb_ports()),
        )
            .prop_map(|(action, op, proto, nets, ports, local)| {
                NetRule::new(
                    "r".into(),
                    action,
                    Ops::of(op),
                    proto,
                    Target::Ip { nets, ports },
                    local,
                )
            })
    }

    proptest! {
        /// The kernel filter and the engine decide every datagram alike, in every form of its
        /// sender's address.
        #[test]
        fn filter_agrees_with_the_engine(
            rules in prop::collection::vec(arb_rule(), 0..6),
            deny_default in any::<bool>(),
            src in arb_ip(),
            sport in 0u16..100,
            dport in 0u16..100,
        ) {
            let default = if deny_default { Action::Deny(Errno::EACCES) } else { Action::Allow };
            let p = policy(rules, default);
            let prog = receive_filter(&p).unwrap();
            let (net, data) = packet(src, sport, dport);
            prop_assert_eq!(run(&prog, &net, &data) != 0, engine_keeps(&p, src, sport, dport));
            if let IpAddr::V4(a) = src {
                let (net, data) = packet(IpAddr::V6(a.to_ipv6_mapped()), sport, dport);
                prop_assert_eq!(run(&prog, &net, &data) != 0, engine_keeps(&p, src, sport, dport));
            }
        }
    }
}
