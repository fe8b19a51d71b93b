/* Instantiates members.template.c for float and double. */
#include "fastmlp.h"

#define FM_DTYPE 32
#include "fm_template.h"
#include "members.template.c"
#include "fm_template_end.h"

#define FM_DTYPE 64
#include "fm_template.h"
#include "members.template.c"
#include "fm_template_end.h"
