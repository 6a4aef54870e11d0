// OpenFWI's finite-difference recipe for one shot on the CPU (equations: torch_backend.py), and
// its exact discrete adjoint for gradients.
//
// The two wavefields of one shot (2 x 384 KB on OpenFWI's 310 x 310 padded grid) stay in the
// core's cache for all time steps, and the inner loop over x compiles to SIMD code. Fields carry
// a frame of two zero cells on every side ("zero beyond the padded grid"), so the stencil needs
// no bounds checks. The arithmetic follows the eager PyTorch recipe term by term; results differ
// from it by float32 rounding only (the compiler may fuse multiply-adds).
//
// With d the sponge's damping times dt, L the 4th-order stencil (symmetric) and P_t the field
// before step t (P_0 = P_-1 = 0), one step is
//     P_t+1 = (2 - d) P_t - (1 - d) P_t-1 + alpha L P_t + e_src a_t,   r_t = R P_t+1.
// The adjoint M_t = dJ/dP_t runs backwards from M_nt+1 = M_nt+2 = 0:
//     M_t+1 = R^T g_t + (2 - d) M_t+2 - (1 - d) M_t+3 + L (alpha M_t+2),
// and gives dJ/dalpha = sum_t M_t+1 L P_t and dJ/da_t = M_t+1[src] for g_t = dJ/dr_t.

#include <cstring>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace {
// Flushes denormal floats to zero while a shot runs. The stencil spreads ever smaller values
// ahead of the wavefront and the sponge damps waves towards zero, so without this many cells
// hold denormals, which cost some CPUs (Intel Xeon) about 100 cycles per operation: the kernel
// runs 4-5x slower there. Values below 1e-38 do not change any record or gradient.
struct FlushDenormals {
#if defined(__SSE__)
    unsigned saved = _mm_getcsr();
    FlushDenormals() { _mm_setcsr(saved | 0x8040); }  // flush-to-zero and denormals-are-zero
    ~FlushDenormals() { _mm_setcsr(saved); }
#endif
};

constexpr float C1 = -2.5f;
constexpr float C2 = 4.0f / 3.0f;
constexpr float C3 = -1.0f / 12.0f;

// dx^2 times the Laplacian of the framed field c at cell x of its row
inline float stencil(const float* c, long x, long pitch) {
    const float ring1 = c[x - pitch] + c[x + pitch] + c[x - 1] + c[x + 1];
    const float ring2 = c[x - 2 * pitch] + c[x + 2 * pitch] + c[x - 2] + c[x + 2];
    return ring1 * C2 + ring2 * C3 + c[x] * (2.0f * C1);
}

struct Grid {
    int height, width;
    long pitch, plane;
    Grid(int h, int w) : height(h), width(w), pitch(w + 4), plane((h + 4) * (w + 4)) {}
    long at(int z, int x) const { return (z + 2) * pitch + x + 2; }
};

// One time step: next = (2 - d) c - (1 - d) prev + alpha L c; next may be prev (in place).
// Only rows [z0, z1) and columns [x0, x1) are computed: the caller keeps every nonzero cell of
// c and prev at least two cells inside them, so the cells outside stay exactly zero.
void step(const Grid& g, const float* __restrict c, const float* prev, float* next,
          const float* __restrict alpha, const float* __restrict rel_z,
          const float* __restrict rel_x, float kappa_dt, int z0, int z1, int x0, int x1) {
    for (int z = z0; z < z1; ++z) {
        const float* __restrict cr = c + g.at(z, 0);
        const float* pr = prev + g.at(z, 0);
        float* out = next + g.at(z, 0);
        const float* __restrict a = alpha + (long)z * g.width;
        const float rz = rel_z[z];
        for (int x = x0; x < x1; ++x) {
            const float lap = stencil(cr, x, g.pitch);
            const float diff = cr[x] - pr[x];
            const float damp = kappa_dt * (rel_x[x] > 0.0f ? rel_x[x] : rz);
            out[x] = cr[x] + diff + a[x] * lap - damp * diff;
        }
    }
}

// The box [z0, z1) x [x0, x1) holding every nonzero cell of the fields. Before the wavefront
// (plus the few cells its numerical precursor reaches before it flushes to zero) has crossed
// the padded grid, most cells are exactly zero: a shot skips them (a quarter of its
// time on OpenFWI's grid).
struct Box {
    int z0, z1, x0, x1;
    // the computed region: the box and the two cells around it that one step can reach
    Box grown(const Grid& g) const {
        return {z0 > 2 ? z0 - 2 : 0, z1 + 2 < g.height ? z1 + 2 : g.height,
                x0 > 2 ? x0 - 2 : 0, x1 + 2 < g.width ? x1 + 2 : g.width};
    }
    // include the nonzero cells of f in the ring between this box and the computed region r
    void take(const Grid& g, const float* f, const Box& r) {
        auto row = [&](int z) {
            const float* fr = f + g.at(z, 0);
            for (int x = r.x0; x < r.x1; ++x) if (fr[x] != 0.0f) return true;
            return false;
        };
        auto col = [&](int x) {
            for (int z = r.z0; z < r.z1; ++z) if (f[g.at(z, x)] != 0.0f) return true;
            return false;
        };
        for (int z = r.z0; z < z0; ++z) if (row(z)) { z0 = z; break; }
        for (int z = r.z1 - 1; z >= z1; --z) if (row(z)) { z1 = z + 1; break; }
        for (int x = r.x0; x < x0; ++x) if (col(x)) { x0 = x; break; }
        for (int x = r.x1 - 1; x >= x1; --x) if (col(x)) { x1 = x + 1; break; }
    }
};
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
    const FlushDenormals flush;
    const Grid g(height, width);
    std::memset(work, 0, 2 * g.plane * sizeof(float));
    float* p = work;            // field after the last step
    float* q = work + g.plane;  // field one step earlier; overwritten with the next one
    Box box{src_z, src_z + 1, src_x, src_x + 1};
    for (int t = 0; t < nt; ++t) {
        const Box region = box.grown(g);
        step(g, p, q, q, alpha, rel_z, rel_x, kappa_dt, region.z0, region.z1, region.x0,
             region.x1);
        q[g.at(src_z, src_x)] += src_amp[t];
        box.take(g, q, region);
        for (int r = 0; r < n_rec; ++r) traces[(long)t * n_rec + r] = q[g.at(rec_z, rec_x[r])];
        float* swap = p;
        p = q;
        q = swap;
    }
}

extern "C" void recipe_shot_grad(
    const float* __restrict alpha, const float* __restrict rel_z, const float* __restrict rel_x,
    float kappa_dt, const float* __restrict src_amp, int src_z, int src_x, int rec_z,
    const int* __restrict rec_x, int n_rec, int height, int width, int nt,
    const float* __restrict grad_traces,  // (nt, n_rec) dJ/dtraces
    float* __restrict grad_alpha,         // (H, W) output dJ/dalpha
    float* __restrict grad_amp,           // (nt,) output dJ/dsrc_amp
    float* __restrict history,            // (nt + 2) * (H + 4) * (W + 4) floats of scratch
    float* __restrict work)               // 3 * (H + 4) * (W + 4) floats of scratch
{
    const FlushDenormals flush;
    const Grid g(height, width);
    // forward again, keeping every field: history k holds P_k-1 (k = 0, 1 are zero)
    std::memset(history, 0, 2 * g.plane * sizeof(float));
    for (int t = 0; t < nt; ++t) {
        float* next = history + (t + 2) * g.plane;
        std::memset(next, 0, g.plane * sizeof(float));  // the frame must be zero
        step(g, history + (t + 1) * g.plane, history + t * g.plane, next, alpha, rel_z, rel_x,
             kappa_dt, 0, height, 0, width);
        next[g.at(src_z, src_x)] += src_amp[t];
    }
    // backwards: m2 = M_t+2, m3 = M_t+3 (overwritten by M_t+1), w = alpha M_t+2 (framed)
    std::memset(work, 0, 3 * g.plane * sizeof(float));
    float* m2 = work;
    float* m3 = work + g.plane;
    float* w = work + 2 * g.plane;
    std::memset(grad_alpha, 0, (long)height * width * sizeof(float));
    for (int t = nt - 1; t >= 0; --t) {
        for (int z = 0; z < height; ++z) {
            const float* __restrict a = alpha + (long)z * width;
            const float* __restrict mr = m2 + g.at(z, 0);
            float* __restrict wr = w + g.at(z, 0);
            for (int x = 0; x < width; ++x) wr[x] = a[x] * mr[x];
        }
        for (int z = 0; z < height; ++z) {
            const float* __restrict wr = w + g.at(z, 0);
            const float* __restrict m2r = m2 + g.at(z, 0);
            float* __restrict out = m3 + g.at(z, 0);
            const float rz = rel_z[z];
            for (int x = 0; x < width; ++x) {
                const float damp = kappa_dt * (rel_x[x] > 0.0f ? rel_x[x] : rz);
                out[x] = (2.0f - damp) * m2r[x] - (1.0f - damp) * out[x] + stencil(wr, x, g.pitch);
            }
        }
        for (int r = 0; r < n_rec; ++r) m3[g.at(rec_z, rec_x[r])] += grad_traces[(long)t * n_rec + r];
        grad_amp[t] = m3[g.at(src_z, src_x)];  // m3 now holds M_t+1
        const float* pt = history + (t + 1) * g.plane;  // P_t
        for (int z = 0; z < height; ++z) {
            const float* __restrict pr = pt + g.at(z, 0);
            const float* __restrict mr = m3 + g.at(z, 0);
            float* __restrict ga = grad_alpha + (long)z * width;
            for (int x = 0; x < width; ++x) ga[x] += mr[x] * stencil(pr, x, g.pitch);
        }
        float* swap = m2;  // M_t+1 becomes the next step's M_t+2, M_t+2 its M_t+3
        m2 = m3;
        m3 = swap;
    }
}
