// Host side of the CPU emulation of recipe_kernel.cu: the test prepends the tile constants,
// cuda_emu.h and the kernel source, and calls emu_launch with the same argument list as the
// CUDA launch (pointers to each argument, as cuLaunchKernel takes them).
extern "C" void emu_launch(unsigned gx, unsigned gy, unsigned gz, unsigned bx, void** a) {
    using cf = const float*;
    using fp = float*;
    using ci = const int*;
    auto I = [a](int k) { return *static_cast<int*>(a[k]); };
    emu_run(dim3(gx, gy, gz), dim3(bx), [&] {
        recipe_steps(*static_cast<cf*>(a[0]), *static_cast<cf*>(a[1]), *static_cast<fp*>(a[2]),
                     *static_cast<fp*>(a[3]), *static_cast<cf*>(a[4]), *static_cast<cf*>(a[5]),
                     *static_cast<cf*>(a[6]), *static_cast<ci*>(a[7]), *static_cast<ci*>(a[8]),
                     *static_cast<fp*>(a[9]), I(10), I(11), I(12), I(13), I(14), I(15), I(16),
                     I(17), I(18), I(19), I(20), I(21), *static_cast<cf*>(a[22]));
    });
}
