/* Process exit statuses, the contract with job scripts (DESIGN.md). */
#ifndef VB_EXIT_CODES_H
#define VB_EXIT_CODES_H

enum {
    VB_EXIT_OK = 0,       /* every row done */
    VB_EXIT_FAILURE = 1,  /* anything else; the message names rank, phase, cause */
    VB_EXIT_USAGE = 2,    /* bad command line or input; nothing was started */
    VB_EXIT_STOPPED = 75, /* stopped by a signal; finished rows saved, --resume continues */
};

#endif
