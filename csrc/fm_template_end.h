/* Clears the macros set by fm_template.h. */
#undef FM_T
#undef FM_FN
#undef FM_EXP
#undef FM_LOG
#undef FM_LOG1P
#undef FM_TANH_FN
#undef FM_SQRT
#undef FM_DTYPE
