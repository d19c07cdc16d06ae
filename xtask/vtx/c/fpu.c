/* fpu: floating point, and SSE/AVX register contents across system calls (each one a VM exit in
 * the sandbox); prints results that must match natively. Part of the VT-x rig's differential
 * suite (cargo xtask vtx). */
#include <cpuid.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int have_avx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)) || !(c & (1u << 28))) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
}

int main(void) {
    double x = 0;
    for (int i = 1; i <= 2000; i++) {
        x += sqrt((double)i) / (1.0 + sin(i) * sin(i));
        if (i % 500 == 0) {
            syscall(SYS_getppid);
            printf("step %d: %.9f\n", i, x);
        }
    }
    /* xmm0-xmm15 hold a pattern across a raw system call. */
    uint8_t in[256], out[256];
    for (int i = 0; i < 256; i++) in[i] = (uint8_t)(i * 7 + 3);
    long nr = SYS_getppid;
    __asm__ volatile(
        "movdqu 0(%1), %%xmm0\n movdqu 16(%1), %%xmm1\n movdqu 32(%1), %%xmm2\n movdqu 48(%1), %%xmm3\n"
        "movdqu 64(%1), %%xmm4\n movdqu 80(%1), %%xmm5\n movdqu 96(%1), %%xmm6\n movdqu 112(%1), %%xmm7\n"
        "movdqu 128(%1), %%xmm8\n movdqu 144(%1), %%xmm9\n movdqu 160(%1), %%xmm10\n movdqu 176(%1), %%xmm11\n"
        "movdqu 192(%1), %%xmm12\n movdqu 208(%1), %%xmm13\n movdqu 224(%1), %%xmm14\n movdqu 240(%1), %%xmm15\n"
        "syscall\n"
        "movdqu %%xmm0, 0(%2)\n movdqu %%xmm1, 16(%2)\n movdqu %%xmm2, 32(%2)\n movdqu %%xmm3, 48(%2)\n"
        "movdqu %%xmm4, 64(%2)\n movdqu %%xmm5, 80(%2)\n movdqu %%xmm6, 96(%2)\n movdqu %%xmm7, 112(%2)\n"
        "movdqu %%xmm8, 128(%2)\n movdqu %%xmm9, 144(%2)\n movdqu %%xmm10, 160(%2)\n movdqu %%xmm11, 176(%2)\n"
        "movdqu %%xmm12, 192(%2)\n movdqu %%xmm13, 208(%2)\n movdqu %%xmm14, 224(%2)\n movdqu %%xmm15, 240(%2)\n"
        : "+a"(nr)
        : "r"(in), "r"(out)
        : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    printf("xmm across syscall: %s\n", memcmp(in, out, sizeof in) ? "CLOBBERED" : "preserved");
    /* ymm upper halves, where AVX is enabled (no output about availability: native and sandbox
     * may differ in CPUID). */
    if (have_avx()) {
        uint8_t yin[64], yout[64];
        for (int i = 0; i < 64; i++) yin[i] = (uint8_t)(255 - i * 3);
        nr = SYS_getppid;
        __asm__ volatile("vmovdqu 0(%1), %%ymm6\n vmovdqu 32(%1), %%ymm15\n syscall\n"
                         "vmovdqu %%ymm6, 0(%2)\n vmovdqu %%ymm15, 32(%2)\n vzeroupper\n"
                         : "+a"(nr)
                         : "r"(yin), "r"(yout)
                         : "rcx", "r11", "memory", "xmm6", "xmm15");
        if (memcmp(yin, yout, sizeof yin)) printf("ymm across syscall: CLOBBERED\n");
        fprintf(stderr, "fpu: ymm registers checked too\n"); /* stderr: not compared */
    }
    return 0;
}
