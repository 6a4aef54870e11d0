// OpenFWI's finite-difference recipe for one shot on the CPU (equations: torch_backend.py).
//
// The two wavefields of one shot (2 x 384 KB on OpenFWI's 310 x 310 padded grid) stay in the
// core's cache for all time steps, and the inner loop over x compiles to SIMD code. Fields carry
// a frame of two zero cells on every side ("zero beyond the padded grid"), so the stencil needs
// no bounds checks. The arithmetic follows the eager PyTorch recipe term by term; results differ
// from it by float32 rounding only (the compiler may fuse multiply-adds).

#include <cstring>

namespace {
constexpr float C1 = -2.5f;
constexpr float C2 = 4.0f / 3.0f;
constexpr float C3 = -1.0f / 12.0f;
}  // namespace

extern "C" void recipe_shot(
    const float* __restrict alpha,    // (H, W) (v dt / dx)^2 on the padded grid
    const float* __restrict rel_z,    // (H,) sponge profile of the top/bottom zones
    const float* __restrict rel_x,    // (W,) sponge profile of the left/right zones (> 0 wins)
    float kappa_dt,                   // sponge strength times dt
    const float* __restrict src_amp,  // (nt,) amplitude added at the source after each step
    int src_z, int src_x, int rec_z,  // cells of the padded grid
    const int* __restrict rec_x,      // (n_rec,) receiver columns of the padded grid
    int n_rec, int height, int width, int nt,
    float* __restrict traces,         // (nt, n_rec) output
    float* __restrict work)           // 2 * (H + 4) * (W + 4) floats of scratch
{
    const long pitch = width + 4;
    const long plane = (height + 4) * pitch;
    std::memset(work, 0, 2 * plane * sizeof(float));
    float* p = work;           // field after the last step
    float* q = work + plane;   // field one step earlier; overwritten with the next one
    for (int t = 0; t < nt; ++t) {
        for (int z = 0; z < height; ++z) {
            const float* __restrict c = p + (z + 2) * pitch + 2;
            float* __restrict out = q + (z + 2) * pitch + 2;
            const float* __restrict a = alpha + (long)z * width;
            const float rz = rel_z[z];
            for (int x = 0; x < width; ++x) {
                const float ring1 = c[x - pitch] + c[x + pitch] + c[x - 1] + c[x + 1];
                const float ring2 = c[x - 2 * pitch] + c[x + 2 * pitch] + c[x - 2] + c[x + 2];
                const float lap = ring1 * C2 + ring2 * C3 + c[x] * (2.0f * C1);
                const float diff = c[x] - out[x];
                const float damp = kappa_dt * (rel_x[x] > 0.0f ? rel_x[x] : rz);
                out[x] = c[x] + diff + a[x] * lap - damp * diff;
            }
        }
        q[(src_z + 2) * pitch + src_x + 2] += src_amp[t];
        const float* row = q + (rec_z + 2) * pitch + 2;
        for (int r = 0; r < n_rec; ++r) traces[(long)t * n_rec + r] = row[rec_x[r]];
        float* swap = p;
        p = q;
        q = swap;
    }
}
