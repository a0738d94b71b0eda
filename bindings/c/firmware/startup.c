/*
 * Start-up code and system calls of the mqseal test firmware (Cortex-M4F on QEMU mps2-an386):
 * vector table, reset handler (copies .data, zeroes .bss, enables the FPU, runs main, exits
 * through semihosting with main's status), _sbrk over the linker script's heap, and _write to
 * the host's console through Arm semihosting (QEMU: -semihosting-config enable=on,target=native).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "firmware.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _stack_top;
extern uint8_t _heap_start, _heap_end;
int main(void);

/* Arm semihosting call (BKPT 0xAB on M-profile). */
static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void fw_console_write(const char *text, size_t len) {
    char chunk[129];
    while (len) {
        size_t n = len < 128 ? len : 128;
        memcpy(chunk, text, n);
        chunk[n] = 0;
        semihost(0x04 /* SYS_WRITE0 */, chunk);
        text += n;
        len -= n;
    }
}

void fw_exit(int status) {
    /* SYS_EXIT_EXTENDED: reason ADP_Stopped_ApplicationExit, then the exit status. */
    uint32_t block[2] = {0x20026, (uint32_t)status};
    semihost(0x20, block);
    for (;;) {}
}

void Reset_Handler(void) {
    for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    /* CPACR: full access to CP10 and CP11 (the FPU; the library is built for eabihf). */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n isb" ::: "memory");
    fw_exit(main());
}

static void Fault_Handler(void) {
    static const char msg[] = "FATAL: hard fault\n";
    fw_console_write(msg, sizeof msg - 1);
    fw_exit(3);
}

__attribute__((section(".isr_vector"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))&_stack_top, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0, Fault_Handler, Fault_Handler, 0,
    Fault_Handler, Fault_Handler,
};

/* ---- newlib system calls ------------------------------------------------------------------- */

void *_sbrk(ptrdiff_t incr) {
    static uint8_t *brk = &_heap_start;
    if (incr < 0 ? (size_t)-incr > (size_t)(brk - &_heap_start)
                 : (size_t)incr > (size_t)(&_heap_end - brk)) {
        errno = ENOMEM;
        return (void *)-1;
    }
    uint8_t *old = brk;
    brk += incr;
    return old;
}

int _write(int fd, const char *buf, int len) {
    (void)fd;
    fw_console_write(buf, (size_t)len);
    return len;
}

int _close(int fd) { (void)fd; return -1; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; errno = EINVAL; return -1; }
void _exit(int status) { fw_exit(status); }
