/*
 * Scalar helpers shared by the templates, for the dtype set by fm_template.h.
 * Included once per dtype (no include guard: the names carry the suffix).
 */

/* logistic sigmoid, stable in both tails: exp never sees a large positive argument */
static inline FM_T FM_FN(fm_sigmoid)(FM_T z)
{
    if (z >= 0) {
        return (FM_T)1 / ((FM_T)1 + FM_EXP_FN(-z));
    }
    FM_T e = FM_EXP_FN(z);
    return e / ((FM_T)1 + e);
}

/* softplus(z) = log(1 + exp(z)), without overflow */
static inline FM_T FM_FN(fm_softplus)(FM_T z)
{
    FM_T m = z > 0 ? z : (FM_T)0;
    FM_T az = z > 0 ? z : -z;
    return m + FM_LOG1P_FN(FM_EXP_FN(-az));
}
