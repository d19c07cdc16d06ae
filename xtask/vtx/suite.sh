# The sandbox part of the VT-x rig, sourced by /init (busybox sh; pass/fail come from there).
#
# Every case runs a program natively and as `sandbox run -- PROGRAM`, inside the rig's guest, and
# compares stdout and the exit status. Escape attempts also check the status against the one
# Linux gives (139: SIGSEGV). Programs: Debian's busybox-static applets and the static C programs
# of xtask/vtx/c (in /vtx/bin).

SB=/vtx/bin/sandbox
IN=/dev/null

# d NAME EXPECTED_STATUS PROGRAM [ARGS...]: native vs sandboxed; EXPECTED_STATUS "-" for any.
d() {
    name=$1 want=$2
    shift 2
    "$@" <$IN >/tmp/native.out 2>/tmp/native.err
    nrc=$?
    timeout 300 $SB run --policy null -- "$@" <$IN >/tmp/sandbox.out 2>/tmp/sandbox.err
    src=$?
    if [ "$nrc" != "$src" ]; then
        why="exit status: native $nrc, sandbox $src"
    elif ! cmp -s /tmp/native.out /tmp/sandbox.out; then
        why="stdout differs"
    elif [ "$want" != - ] && [ "$src" != "$want" ]; then
        why="exit status $src, expected $want"
    else
        pass "sandbox/$name"
        return
    fi
    echo "VTX: sandbox/$name: $*"
    echo "VTX: --- native stdout vs sandbox stdout (first lines of the diff):"
    diff -u /tmp/native.out /tmp/sandbox.out | head -n 20
    echo "VTX: --- sandbox stderr:"
    head -c 1500 /tmp/sandbox.err
    fail "sandbox/$name" "$why"
}

BB=/bin/busybox
# Which paths did the sandbox's start-up probe choose? (logged at debug level when the VM is
# created: "VM created ... platform=Platform { syscall_path: .., tlb_flush: .. }").
SANDBOX_LOG=debug $SB run --policy null -- /vtx/bin/hello >/dev/null 2>/tmp/sandbox.log
created=$(grep 'VM created' /tmp/sandbox.log)
echo "VTX-PLATFORM sandbox: $(echo "$created" | grep -o 'Platform {[^}]*}')"
case $created in
*"syscall_path: Ring0"*"tlb_flush: ReloadCr3"*) pass sandbox/platform ;;
*)
    head -c 3000 /tmp/sandbox.log
    fail sandbox/platform "the sandbox's VM did not choose Ring0 + ReloadCr3"
    ;;
esac

# Busybox applets (each through the multi-call binary, no fork: the sandbox has none yet).
d echo - $BB echo hello from guest ring 3
d true 0 $BB true
d false 1 $BB false
d sh-exit 42 $BB sh -c 'exit 42'
d sh-loop 0 $BB sh -c 'i=0; while [ $i -lt 300 ]; do i=$((i + 1)); done; echo $i'
d seq 0 $BB seq 1 3000
d cat 0 $BB cat /vtx/suite.sh /init
d wc 0 $BB wc /vtx/suite.sh /init
d sort 0 $BB sort -r /vtx/suite.sh
d grep 0 $BB grep -n -E 'pass|fail' /init
d sed 0 $BB sed -n -e '3,9p' -e 's/sandbox/SANDBOX/gp' /vtx/suite.sh
d cut 0 $BB cut -c 1-20 /init
d sha256sum 0 $BB sha256sum /bin/busybox
d md5sum 0 $BB md5sum /vtx/bin/hello /vtx/bin/mem
d od 0 $BB od -A x -t x1 -N 512 /bin/busybox
d dd 0 $BB dd if=/bin/busybox bs=4096 skip=3 count=16
d gzip 0 $BB gzip -c -6 /vtx/bin/mem
d ls 0 $BB ls -la /vtx /vtx/bin
d find 0 $BB find /vtx -type f
d stat 0 $BB stat -c '%n %s %a %F' /bin/busybox /vtx /dev/null
d awk 0 $BB awk 'BEGIN { s = 0; for (i = 0; i < 20000; i++) s += i * i; print s }'
d expr 0 $BB expr 6 '*' 7
d printf 0 $BB printf '%s=%d %x\n' answer 42 255
d date 0 $BB date -u -d @1700000000
d uname 0 $BB uname -s -m
d id 0 $BB id
d readlink 0 $BB readlink /proc/self/exe
d ls-missing 1 $BB ls /nonexistent
IN=/init
d wc-stdin 0 $BB wc -l
IN=/dev/null
# The shell forks for pipelines, command substitution and external commands: each child is a new
# VM in the sandbox.
d sh-pipe 0 $BB sh -c 'seq 1 500 | grep 7 | wc -l'
d sh-subst 0 $BB sh -c 'echo "$(uname -s)-$(echo nested)"'
d sh-exec 0 $BB sh -c '/vtx/bin/hello 4 x; echo status=$?'

# Static C programs.
export VTX_GREETING="hi there"
d c-hello 3 /vtx/bin/hello 3 a 'b c'
unset VTX_GREETING
d c-mem 0 /vtx/bin/mem
d c-files 0 /vtx/bin/files /tmp/vtx-files
# Bochs mis-emulates FMA4 (AMD models such as zambezi): glibc's __sin_fma4 then indexes outside
# its table and the program crashes natively too. Keep glibc off FMA4 (no effect on Intel models).
export GLIBC_TUNABLES=glibc.cpu.hwcaps=-FMA4
d c-fpu 0 /vtx/bin/fpu
unset GLIBC_TUNABLES
d c-tls 0 /vtx/bin/tls
d c-sig 0 /vtx/bin/sig
d c-thr 0 /vtx/bin/thr
d c-proc 0 /vtx/bin/proc
# The sandbox suite's differential programs (crates/sandbox/tests/c): random mmap/munmap/mremap/
# mprotect/madvise/brk sequences with every page checked (fewer steps than there: Bochs is slow),
# a realloc'ed buffer grown to 2 MiB, RLIMIT_AS/RLIMIT_DATA on mappings, descriptors around
# posix_spawn and vfork, fork after dropping privileges (the child's VM from its parent's
# /dev/kvm descriptor), per-thread credentials, resource limits, signalfd, and descriptor calls
# racing fork from four threads.
cd /tmp
d c-mem-ops 0 /vtx/bin/mem_ops 3 250
d c-mem-realloc 0 /vtx/bin/mem_realloc 2
d c-mem-rlimits 0 /vtx/bin/mem_rlimits
d c-spawn-fds 0 /vtx/bin/proc_spawn_fds
d c-drop-privs 0 /vtx/bin/proc_drop_privs
d c-thread-creds 0 /vtx/bin/proc_thread_creds
d c-rlimit-runtime 0 /vtx/bin/rlimit_runtime
d c-signalfd 0 /vtx/bin/sig_signalfd
d c-fd-stress 0 /vtx/bin/thr_fd_stress 8
# The vDSO: the host kernel's own, run in guest ring 3 with the guest's TSC the host's (the
# vCPU's TSC offset 0): clocks between the kernel's own readings, never backwards.
d c-vdso 0 /vtx/bin/vdso_clock quick
# UMIP: where the emulated CPU has it, Linux gives fixed values and so must the sandbox; where
# it has not, both show real tables (the guest's are the runtime's, so only the status counts).
if /vtx/bin/insn_umip | grep -q "dummy values: 1"; then
    d c-umip 0 /vtx/bin/insn_umip
else
    d c-umip-status 0 sh -c '/vtx/bin/insn_umip >/dev/null; echo $?'
fi
cd /

# Escape attempts: privileged instructions die of SIGSEGV (status 139) before "returned",
# unknown system calls get ENOSYS ...
for i in hlt cli out rdmsr kread; do
    d "escape-$i" 139 /vtx/bin/priv $i
done
# vmcall: natively (Bochs is the hardware here) #UD, SIGILL (132). In the sandbox: SIGILL on AMD-V
# (KVM's emulator raises #GP, the sandbox reports what hardware would), or "returned" on VT-x
# (KVM answers a CPL-3 vmcall itself with -KVM_EPERM). Never a hang, never another signal.
timeout 300 $SB run --policy null -q -- /vtx/bin/priv vmcall </dev/null >/tmp/sandbox.out 2>/tmp/sandbox.err
src=$?
if [ $src = 132 ] || { [ $src = 0 ] && grep -q "vmcall returned" /tmp/sandbox.out; }; then
    pass sandbox/escape-vmcall
else
    head -c 1500 /tmp/sandbox.err
    fail sandbox/escape-vmcall "exit status $src, expected 132 (SIGILL) or 0 after \"vmcall returned\""
fi
d escape-nosys 0 /vtx/bin/nosys
# ... and signal frames cannot smuggle in IOPL or a bad RIP; TF in a frame single-steps (SIGTRAP).
for m in iopl badrip kernrip badhandler; do
    d "escape-sig-$m" 139 /vtx/bin/sigesc $m
done
d sig-tf 133 /vtx/bin/sigesc tf

# --trace writes an strace-style line per system call and the exit.
if $SB run --policy null --trace -- $BB true 2>/tmp/trace.err && grep -q 'exited with 0' /tmp/trace.err; then
    pass sandbox/trace
else
    head -c 1500 /tmp/trace.err
    fail sandbox/trace "no 'exited with 0' in the trace"
fi
