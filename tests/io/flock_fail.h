/* A flock() for test programs that link flock_fail.c: found before the C
 * library's, so a test can make HDF5's file lock fail as a file system
 * without locks does (ENOLCK: NFS without a lock daemon; HDF5 1.10's
 * best-effort locking lets only ENOSYS pass) or as another writer's lock
 * does (EWOULDBLOCK). */
#ifndef VB_TEST_FLOCK_FAIL_H
#define VB_TEST_FLOCK_FAIL_H

/* The errno every flock() fails with; 0 (the default): the real call. */
extern int flock_fails_with;

#endif
