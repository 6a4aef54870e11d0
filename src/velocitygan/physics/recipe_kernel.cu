// OpenFWI's finite-difference recipe (see torch_backend.py for the equations), several time
// steps per launch: temporal blocking through shared memory.
//
// One block advances one output tile of one (model, shot) wavefield by up to K steps. It loads
// the tile plus a halo of 2K cells (the 4th-order stencil reaches 2 cells per step), so after K
// steps the tile is exact while the halo has gone stale from the outside in. Each thread owns a
// vertical strip of SEG cells of one column: its wavefield values, previous values and
// coefficients stay in registers, and only the current field passes through shared memory so
// that neighbours can read it. Cells beyond the padded grid hold zero and never change (their
// alpha and damping are zero), which is the recipe's "zero beyond the grid".
//
// The host defines TX, TZ (output tile, cells), K (steps per launch), SEG (cells per thread)
// and NSEG (threads per column), with (TZ + 4K) == SEG * NSEG, and NBUF: 2 alternates two
// shared buffers between steps (one barrier per step), 1 uses one (two barriers per step, half
// the shared memory), and MIN_BLOCKS, the blocks per multiprocessor the register allocation
// must leave room for. The same source compiles as C++ for the CPU emulation in tests/cuda_emu.

#define HALO (2 * K)
#define RX (TX + 2 * HALO)
#define RZ (TZ + 2 * HALO)
#define NTHREADS (RX * NSEG)

static_assert(RZ == SEG * NSEG, "TZ + 4K must equal SEG * NSEG");
static_assert(NBUF == 1 || NBUF == 2, "NBUF must be 1 or 2");

#define C1 (-2.5f)
#define C2 (4.0f / 3.0f)
#define C3 (-1.0f / 12.0f)

__device__ __forceinline__ int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// Sponge profile in [0, 1] as torch_backend.sponge_profile builds it.
__device__ __forceinline__ float sponge_rel(int i, int n, int pad) {
    int d = (pad - 1 - i > 0 ? pad - 1 - i : 0) + (i - (pad + n) > 0 ? i - (pad + n) : 0);
    float r = (float)d / (float)(pad - 1);
    return r * r;
}

extern "C" __global__ void __launch_bounds__(NTHREADS, MIN_BLOCKS) recipe_steps(
    const float* __restrict__ p_in,      // (N*S, H, W) field after step t0-1
    const float* __restrict__ q_in,      // (N*S, H, W) field after step t0-2
    float* __restrict__ p_out,
    float* __restrict__ q_out,
    const float* __restrict__ vel,       // (N, nz, nx) m/s
    const float* __restrict__ kappa_dt,  // (N,) sponge strength times dt
    const float* __restrict__ src_amp,   // (N*S, nt) injected amplitude per step
    const int* __restrict__ src_x,       // (S,) source column in the padded grid
    const int* __restrict__ rec_map,     // (W,) receiver index of each padded column, or -1
    float* __restrict__ traces,          // (N*S, nt, R)
    int n_shots, int height, int width, int nz, int nx, int pad, int nt, int t0, int n_steps,
    int src_z, int rec_z, int n_rec,
    const float* __restrict__ courant)   // (1,) dt / dx in s/m (a pointer: launchers differ
{                                        // in how they pass Python floats)
    // the field of the region with a 2-cell frame of zeros, so that every neighbour load is
    // unconditional (the frame feeds only the stale halo, never the output tile)
    __shared__ float shared_p[NBUF][RZ + 4][RX + 4];
    for (int k = threadIdx.x; k < NBUF * (RZ + 4) * (RX + 4); k += NTHREADS)
        (&shared_p[0][0][0])[k] = 0.0f;
    const int lx = threadIdx.x % RX;
    const int lz0 = (threadIdx.x / RX) * SEG;
    const int x0 = (int)blockIdx.x * TX - HALO;  // region origin in the padded grid
    const int z0 = (int)blockIdx.y * TZ - HALO;
    const int ns = blockIdx.z;                  // model * n_shots + shot
    const int n = ns / n_shots;
    const long long plane = (long long)height * width;
    const int gx = x0 + lx;
    const bool col_in = gx >= 0 && gx < width;
    const float c = courant[0];
    const float kdt = kappa_dt[n];
    const float rel_x = col_in ? sponge_rel(gx, nx, pad) : 0.0f;
    const int vx = clamp_int(gx - pad, 0, nx - 1);
    const int src_lz = src_z - z0;
    const int src_lx = src_x[ns - n * n_shots] - x0;
    const bool out_col = lx >= HALO && lx < HALO + TX && col_in;
    // receivers: only the block whose output tile holds the cell records it
    const int rec_r = (out_col && rec_z - z0 >= HALO && rec_z - z0 < HALO + TZ) ? rec_map[gx] : -1;
    // the thread whose strip holds the source cell injects, the one holding a receiver records
    // (after the update loop, so that the other threads pay nothing per cell)
    const int src_i = src_lz - lz0;
    const bool has_src = lx == src_lx && src_i >= 0 && src_i < SEG;
    const int rec_i = rec_z - z0 - lz0;
    const bool has_rec = rec_r >= 0 && rec_i >= 0 && rec_i < SEG;

    float p[SEG], q[SEG], alpha[SEG], damp[SEG];
#pragma unroll
    for (int i = 0; i < SEG; ++i) {
        const int gz = z0 + lz0 + i;
        if (col_in && gz >= 0 && gz < height) {
            const long long at = ns * plane + (long long)gz * width + gx;
            p[i] = p_in[at];
            q[i] = q_in[at];
            const float a = vel[((long long)n * nz + clamp_int(gz - pad, 0, nz - 1)) * nx + vx] * c;
            alpha[i] = a * a;
            damp[i] = kdt * (rel_x > 0.0f ? rel_x : sponge_rel(gz, nz, pad));
        } else {
            p[i] = 0.0f;
            q[i] = 0.0f;
            alpha[i] = 0.0f;
            damp[i] = 0.0f;
        }
    }

    __syncthreads();  // the frame is zero before anyone publishes
    for (int j = 0; j < n_steps; ++j) {
        const int t = t0 + j;
        // with two buffers nobody still reads this one; sp[z][x] is region cell (z-2, x-2)
        float (*sp)[RX + 4] = shared_p[j % NBUF];
#pragma unroll
        for (int i = 0; i < SEG; ++i) sp[lz0 + i + 2][lx + 2] = p[i];
        __syncthreads();
        float om2 = sp[lz0][lx + 2];  // old values two and one rows up
        float om1 = sp[lz0 + 1][lx + 2];
#pragma unroll
        for (int i = 0; i < SEG; ++i) {
            const int lz = lz0 + i;
            const float ctr = p[i];
            const float dn1 = i + 1 < SEG ? p[i + 1] : sp[lz + 3][lx + 2];
            const float dn2 = i + 2 < SEG ? p[i + 2] : sp[lz + 4][lx + 2];
            const float l1 = sp[lz + 2][lx + 1];
            const float r1 = sp[lz + 2][lx + 3];
            const float l2 = sp[lz + 2][lx];
            const float r2 = sp[lz + 2][lx + 4];
            const float ring1 = om1 + dn1 + l1 + r1;
            const float ring2 = om2 + dn2 + l2 + r2;
            const float lap = ring1 * C2 + ring2 * C3 + ctr * (2.0f * C1);
            const float diff = ctr - q[i];
            const float nxt = ctr + diff + alpha[i] * lap - damp[i] * diff;
            om2 = om1;
            om1 = ctr;
            q[i] = ctr;
            p[i] = nxt;
        }
        if (has_src) {
            const float amp = src_amp[(long long)ns * nt + t];
#pragma unroll
            for (int i = 0; i < SEG; ++i)
                if (i == src_i) p[i] += amp;
        }
        if (has_rec) {
            float value = 0.0f;
#pragma unroll
            for (int i = 0; i < SEG; ++i)
                if (i == rec_i) value = p[i];
            traces[((long long)ns * nt + t) * n_rec + rec_r] = value;
        }
        if (NBUF == 1) __syncthreads();  // everyone has read sp before the next step writes it
    }

    if (!out_col) return;
#pragma unroll
    for (int i = 0; i < SEG; ++i) {
        const int lz = lz0 + i;
        const int gz = z0 + lz;
        if (lz >= HALO && lz < HALO + TZ && gz < height) {
            const long long at = ns * plane + (long long)gz * width + gx;
            p_out[at] = p[i];
            q_out[at] = q[i];
        }
    }
}
