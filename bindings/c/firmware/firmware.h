/* What the test and budget firmware share with startup.c (mps2-an386 under QEMU). */
#ifndef MQSEAL_FIRMWARE_H
#define MQSEAL_FIRMWARE_H
#include <stddef.h>

/* Writes `len` bytes to the host console (semihosting). */
void fw_console_write(const char *text, size_t len);
/* Ends the emulation with `status` as QEMU's exit status (semihosting SYS_EXIT_EXTENDED). */
void fw_exit(int status) __attribute__((noreturn));
#endif
