/* Baseline for `cargo xtask bench boot`: the least a KVM program can do to
 * run guest code. Creates a VM with 2 MiB of RAM and one vCPU in 64-bit
 * mode (identity page tables, flat GDT), runs it to its first exit (a store
 * to an address with no memory) and exits 0. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#define RAM (2u << 20)
#define DIE(m) do { perror(m); return 1; } while (0)

int main(void) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) DIE("/dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) DIE("KVM_CREATE_VM");
    uint8_t *mem = mmap(0, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = RAM, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) DIE("KVM_SET_USER_MEMORY_REGION");
    uint64_t *pml4 = (void *)(mem + 0x1000), *pdpt = (void *)(mem + 0x2000), *pd = (void *)(mem + 0x3000);
    pml4[0] = 0x2000 | 7; pdpt[0] = 0x3000 | 7; pdpt[3] = 0x4000 | 7;
    pd[0] = 0x83 | 4;                                  /* 0..2 MiB */
    ((uint64_t *)(mem + 0x4000))[0] = 0xc0000000 | 0x87; /* doorbell */
    uint64_t *gdt = (void *)(mem + 0x500);
    gdt[1] = 0x00af9b000000ffffULL; gdt[2] = 0x00cf93000000ffffULL;
    /* movabs $0xc0000000, %rax ; movq %rax, (%rax) */
    static const uint8_t code[] = {0x48, 0xb8, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0x48, 0x89, 0x00};
    memcpy(mem + 0x10000, code, sizeof code);
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) DIE("KVM_CREATE_VCPU");
    int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct kvm_sregs s;
    if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) DIE("KVM_GET_SREGS");
    s.cr3 = 0x1000; s.cr4 = 1 << 5; s.cr0 = 0x80000033; s.efer = 0x500;
    struct kvm_segment cs = {.limit = 0xffffffff, .selector = 8, .present = 1, .type = 11, .s = 1, .l = 1, .g = 1};
    struct kvm_segment ds = {.limit = 0xffffffff, .selector = 16, .present = 1, .type = 3, .s = 1, .db = 1, .g = 1};
    s.cs = cs; s.ds = s.es = s.fs = s.gs = s.ss = ds;
    s.gdt.base = 0x500; s.gdt.limit = 23;
    if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) DIE("KVM_SET_SREGS");
    struct kvm_regs g = {.rip = 0x10000, .rsp = 0x100000, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &g) < 0) DIE("KVM_SET_REGS");
    if (ioctl(vcpu, KVM_RUN, 0) < 0) DIE("KVM_RUN");
    if (run->exit_reason != KVM_EXIT_MMIO || run->mmio.phys_addr != 0xc0000000) {
        fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
        return 1;
    }
    return 0;
}
