/*
 * fastmlp C kernels: element-wise math on raw, C-contiguous, row-major buffers.
 *
 * Every kernel exists twice, for float (_f32) and double (_f64), generated from
 * one <topic>.template.c included twice by the thin <topic>.c (see fm_template.h).
 * Kernels never allocate, print or check their arguments: the Python boundary
 * has already checked shapes, dtypes and finiteness. Argument order is sizes,
 * then inputs (const), then outputs.
 */
#ifndef FASTMLP_H
#define FASTMLP_H

#include <stddef.h>
#include <stdint.h>

/* Activation codes (hidden and output layers). Mirrored by _registry.py and
 * checked against it by tests/test_kernels.py. */
enum {
    FM_IDENTITY = 0,
    FM_LOGISTIC = 1,
    FM_TANH = 2,
    FM_RELU = 3,
    FM_LEAKY_RELU = 4,
    FM_SWISH = 5,
    FM_SOFTMAX = 6,
    FM_EXP = 7,
    FM_PRELU = 8 /* learnable slope per unit: its own kernels, fm_prelu_* */
};

/* Loss codes, each fused with the output activation it fixes (losses.template.c):
 * identity + squared_error, logistic + log_loss, softmax + log_loss, exp + poisson,
 * identity + absolute_error, identity + huber, identity + quantile, exp + gamma.
 * Mirrored by _registry.OUTPUTS and checked against it by tests/test_kernels.py. */
enum {
    FM_SQUARED_ERROR = 0,
    FM_LOGISTIC_LOG_LOSS = 1,
    FM_SOFTMAX_LOG_LOSS = 2,
    FM_POISSON = 3,
    FM_ABSOLUTE_ERROR = 4,
    FM_HUBER = 5,
    FM_QUANTILE = 6,
    FM_GAMMA = 7
};

/* Optimizer codes. */
enum { FM_SGD = 0, FM_ADAM = 1 };

/* FM_HOT marks a kernel definition: on x86-64 glibc Linux (GCC, Clang) it is
 * compiled twice, for the baseline x86-64 (SSE2) and for x86-64-v3 (AVX2, FMA),
 * and the loader picks the clone the CPU runs (a glibc ifunc, resolved once). The
 * extension is built without -march flags so that one wheel runs everywhere;
 * this gives the element-wise loops the 256-bit vectors they would get from
 * -march=native where the CPU has them (Adam's update: 1.8x faster on AVX2).
 * Define FM_NO_CLONES to build the baseline version only. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && !defined(FM_NO_CLONES)
#if __has_attribute(target_clones)
#define FM_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define FM_CLONE_SWITCH
#endif
#endif
#endif
#ifndef FM_HOT
#define FM_HOT
#endif

/* The clone switch: FASTMLP_KERNELS=baseline in the environment the process
 * starts with makes every FM_HOT kernel run its baseline clone on any CPU, so
 * that one machine tests both paths (tests/test_dispatch.py). The clones'
 * resolvers, run once as the extension is loaded (import fastmlp), call libgcc's
 * __cpu_indicator_init and then test its x86-64-v3 bit; setup.py links with
 * -Wl,--wrap=__cpu_indicator_init, which sends that call here first. Where the
 * bit lies in libgcc's table is found (by clearing one set bit at a time until
 * __builtin_cpu_supports says no), not assumed. A resolver runs while the
 * extension's own calls into libc are not yet bound, so the environment is read
 * from /proc/self/environ by bare system calls. Without the link flag nothing
 * calls the wrapper and the switch does nothing. fm_kernel_level() says which
 * clones run: 3 (x86-64-v3) or 0 (baseline); a build without the switch does not
 * have it. Both are defined weak (every kernel file includes this header; the
 * linker keeps one copy). */
#ifdef FM_CLONE_SWITCH
extern unsigned int __cpu_features2[];
int __real___cpu_indicator_init(void) __attribute__((weak));

static inline int fm_cpu_has_v3_(void)
{
    /* the compiler cannot see that __cpu_features2 is what the builtin reads */
    __asm__ volatile("" ::: "memory");
    return __builtin_cpu_supports("x86-64-v3");
}

static inline long fm_syscall3_(long number, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(number), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

/* whether the process started with the entry FASTMLP_KERNELS=baseline */
static inline int fm_baseline_wanted_(void)
{
    static const char entry[] = "FASTMLP_KERNELS=baseline";  /* with its '\0', as the file has it */
    static char buf[4096];
    long fd = fm_syscall3_(2 /* open */, (long)"/proc/self/environ", 0 /* O_RDONLY */, 0), n;
    int found = 0, k = 0;  /* k: characters of entry matched in this entry, -1: not this one */
    if (fd < 0) return 0;
    while (!found && (n = fm_syscall3_(0 /* read */, fd, (long)buf, sizeof buf)) > 0) {
        for (long i = 0; i < n && !found; i++) {
            if (k >= 0 && buf[i] == entry[k]) found = ++k == (int)sizeof entry;
            else k = buf[i] == '\0' ? 0 : -1;
        }
    }
    fm_syscall3_(3 /* close */, fd, 0, 0);
    return found;
}

/* hidden: the resolvers call it directly, not through the extension's (unbound) PLT */
__attribute__((weak, visibility("hidden"))) int __wrap___cpu_indicator_init(void)
{
    int ret = __real___cpu_indicator_init ? __real___cpu_indicator_init() : -1;
    if (ret == 0 && fm_cpu_has_v3_() && fm_baseline_wanted_()) {
        /* libgcc's table has held three words since GCC 12 brought the ISA levels */
        for (int i = 0; i < 3 * 32 && fm_cpu_has_v3_(); i++) {
            unsigned int bit = 1u << (i % 32), *word = &__cpu_features2[i / 32];
            if (!(*word & bit)) continue;
            *word &= ~bit;
            if (fm_cpu_has_v3_()) *word |= bit;  /* not that one */
        }
    }
    return ret;
}

__attribute__((weak)) int fm_kernel_level(void) { return fm_cpu_has_v3_() ? 3 : 0; }
#endif

/* Slope of leaky_relu for z < 0. */
#define FM_LEAKY_SLOPE 0.01

/* xoshiro256** state: the PRNG behind dropout masks. */
typedef struct { uint64_t s[4]; } fm_rng;

void fm_rng_seed(fm_rng *rng, uint64_t seed);
uint64_t fm_rng_next(fm_rng *rng);

#define FM_DECLARE_KERNELS(T, SUF)                                               \
    void fm_bias_act_forward_##SUF(int act, ptrdiff_t n_rows, ptrdiff_t n_cols, \
                                   ptrdiff_t ld, const T *bias, T *Z, T *A,     \
                                   T *colmax);                                  \
    void fm_act_backward_##SUF(int act, ptrdiff_t n_rows, ptrdiff_t n_cols,     \
                               ptrdiff_t ld, const T *Z, const T *A, T *delta); \
    void fm_prelu_forward_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,             \
                                ptrdiff_t ld, const T *bias, const T *slopes,   \
                                T *Z, T *A, T *colmax);                         \
    void fm_prelu_backward_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,            \
                                 ptrdiff_t ld, int accumulate, const T *Z,      \
                                 const T *slopes, T *delta, T *slope_grad);     \
    void fm_col_max_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld,     \
                          const T *M, T *colmax);                               \
    void fm_col_sum_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t ld,     \
                          int accumulate, const T *M, T *out);                  \
    void fm_gather_rows_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,               \
                              const ptrdiff_t *idx, const T *X, T *out);        \
    void fm_output_forward_##SUF(int act, ptrdiff_t n_rows, ptrdiff_t n_cols,   \
                                 const T *bias, T *Z);                          \
    void fm_output_delta_##SUF(int loss, ptrdiff_t n_rows,                      \
                               ptrdiff_t n_cols, T scale, double param,         \
                               const T *bias,                                   \
                               const T *Y, const T *sw, T *Z, T *delta,         \
                               double *loss_sum);                               \
    void fm_sgd_update_##SUF(ptrdiff_t n, T learning_rate, T momentum,          \
                             int nesterov, T l2, const T *grad, T *velocity,    \
                             T *params, double *grad_sumsq);                    \
    void fm_adam_update_##SUF(ptrdiff_t n, T step_size, double beta_1,          \
                              double beta_2,                                    \
                              T epsilon, T l2, const T *grad, T *m, T *v,       \
                              T *params, double *grad_sumsq);                   \
    void fm_block_sumsq_##SUF(ptrdiff_t n_rows, ptrdiff_t n_blocks,              \
                              ptrdiff_t block_cols, ptrdiff_t ld, const T *M,   \
                              double *out, ptrdiff_t out_stride);               \
    double fm_largest_row_sumsq_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,        \
                                      const T *M);                              \
    void fm_members_forward_##SUF(ptrdiff_t n_members, ptrdiff_t n_rows,         \
                                  ptrdiff_t fan_in, ptrdiff_t fan_out,          \
                                  const T *A, ptrdiff_t lda, const T *W, T *Z,  \
                                  ptrdiff_t ld_member);                         \
    void fm_members_weight_grad_##SUF(ptrdiff_t n_members, ptrdiff_t n_rows,     \
                                      ptrdiff_t fan_in, ptrdiff_t fan_out,      \
                                      const T *A, ptrdiff_t lda, const T *D,    \
                                      ptrdiff_t ld_member, T *dW);              \
    void fm_members_backprop_##SUF(ptrdiff_t n_members, ptrdiff_t n_rows,        \
                                   ptrdiff_t fan_in, ptrdiff_t fan_out,         \
                                   const T *D, ptrdiff_t ld_member, const T *W, \
                                   T *P, ptrdiff_t lda);                        \
    void fm_narrow_matmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_in,                \
                                ptrdiff_t n_cols, const T *A, ptrdiff_t lda,    \
                                const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc);\
    void fm_narrow_tmatmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_in,               \
                                 ptrdiff_t n_cols, const T *A, ptrdiff_t lda,   \
                                 const T *D, ptrdiff_t ldd, T *G,               \
                                 ptrdiff_t ldg);                                \
    void fm_dropout_##SUF(ptrdiff_t n, T keep, fm_rng *rng, const T *A, T *M,   \
                          T *D);                                                \
    void fm_mul_##SUF(ptrdiff_t n, const T *M, T *X);                           \
    void fm_all_finite_##SUF(ptrdiff_t n, const T *x, int *finite);             \
    void fm_csr_matmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_cols,                \
                             const ptrdiff_t *rows, ptrdiff_t row0,             \
                             const ptrdiff_t *indptr, const ptrdiff_t *indices, \
                             const T *data, const T *W, T *Z);                  \
    void fm_csr_tmatmul_##SUF(ptrdiff_t n_rows, ptrdiff_t n_in,                 \
                              ptrdiff_t n_cols, int accumulate,                 \
                              const ptrdiff_t *rows, ptrdiff_t row0,            \
                              const ptrdiff_t *indptr,                          \
                              const ptrdiff_t *indices, const T *data,          \
                              const T *delta, T *dW);

FM_DECLARE_KERNELS(float, f32)
FM_DECLARE_KERNELS(double, f64)

#endif
