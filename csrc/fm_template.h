/*
 * Sets the macros a <topic>.template.c is written in, for one dtype:
 *   FM_T       the element type
 *   FM_FN(x)   the kernel name with the dtype suffix (x_f32 / x_f64)
 *   FM_LOG_FN, FM_SQRT_FN: libm for that type (exp, tanh and log1p are the kernels'
 *              own, mathfun.template.h: fm_exp, fm_tanh, fm_log1p_unit)
 *              (the _FN suffix keeps them apart from the codes FM_TANH, FM_EXP)
 * Define FM_DTYPE to 32 or 64 before including; include fm_template_end.h after
 * the template to clear everything for the next dtype.
 */
#ifdef FM_T
#error "fm_template.h: FM_T is already defined (missing fm_template_end.h?)"
#endif
#ifndef FM_DTYPE
#error "fm_template.h: define FM_DTYPE to 32 or 64 first"
#endif

#include <math.h>

#if FM_DTYPE == 32
#define FM_T float
#define FM_FN(name) name##_f32
#define FM_LOG_FN logf
#define FM_SQRT_FN sqrtf
#elif FM_DTYPE == 64
#define FM_T double
#define FM_FN(name) name##_f64
#define FM_LOG_FN log
#define FM_SQRT_FN sqrt
#else
#error "fm_template.h: FM_DTYPE must be 32 or 64"
#endif
