/*
 * main.c: orchctl, the operator's command line of orch (see run.h, and
 * `orchctl help`).
 */
#include "run.h"

int main(int argc, char **argv)
{
    return ctl_main(argc, argv);
}
