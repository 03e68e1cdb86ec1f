/* The sandbox ("pause") process of the test node's pods: holds the pod's namespaces and
 * exits on SIGTERM or SIGINT. */
#include <signal.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  for (;;) pause();
}
