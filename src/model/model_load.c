/* model_load_cpu: not landed yet (issue #3); see model_load.h. */
#include <stdlib.h>
#include <string.h>

#include "model/model_load.h"

int model_load_cpu(model_weights *w, const model_config *c, const tp_plan *p,
                   const char *model_dir, vb_err *err)
{
    (void)c;
    (void)p;
    memset(w, 0, sizeof *w);
    return vb_err_set(err, "%s: model loading is not built yet (issue #3)", model_dir);
}

void model_weights_free(model_weights *w)
{
    if (!w)
        return;
    memset(w, 0, sizeof *w);
}
