/* Clears the macros set by fm_template.h. */
#undef FM_T
#undef FM_FN
#undef FM_LOG_FN
#undef FM_SQRT_FN
#undef FM_DTYPE
