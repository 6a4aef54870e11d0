// Just enough of CUDA to run a kernel on the CPU for tests: one OS thread per CUDA thread,
// blocks one after another, __syncthreads as a barrier, __shared__ as a function-static array
// (shared by the threads of the one block that runs at a time).
#pragma once
#include <barrier>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;
inline std::barrier<>* emu_block_barrier = nullptr;

inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __restrict__ __restrict

template <class Kernel>
void emu_run(dim3 grid, dim3 block, Kernel kernel) {
    const unsigned n = block.x * block.y * block.z;
    gridDim = grid;
    blockDim = block;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                std::barrier<> barrier(n);
                emu_block_barrier = &barrier;
                std::vector<std::thread> threads;
                threads.reserve(n);
                for (unsigned t = 0; t < n; ++t)
                    threads.emplace_back([&, t] {
                        blockIdx = dim3(bx, by, bz);
                        threadIdx = dim3(t % block.x, (t / block.x) % block.y,
                                         t / (block.x * block.y));
                        kernel();
                    });
                for (auto& th : threads) th.join();
            }
}
