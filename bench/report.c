/* mmf-bench --report DIR: runs the scenario matrix (precision x batch x
 * fusion strategy, every mode and partition inside each run, plus the
 * PyTorch peer per batch), resumably, then renders the report. */
#include "config.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 48

typedef struct scenario {
	char name[64];
	char what[128];		/* for progress lines */
	const char *argv[MAX_ARGS];
	int argc;
	char store[MAX_ARGS][4400];	/* backing for argv strings (paths under DIR) */
	int nstore;
} scenario;

__attribute__((format(printf, 2, 3)))
static const char *keep(scenario *s, const char *fmt, ...)
{
	char *d = s->store[s->nstore++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d, sizeof s->store[0], fmt, ap);
	va_end(ap);
	return d;
}

static void arg(scenario *s, const char *a) { s->argv[s->argc++] = a; }

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Starts argv with stdout and stderr to log and, when gpu >= 0, only that
 * GPU visible (CUDA_VISIBLE_DEVICES); returns its pid or -1. */
static pid_t start(const char *const *argv, const char *log, int gpu)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* the environment, with CUDA_VISIBLE_DEVICES replaced */
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof *env), vis[48];
	pid_t pid = -1;
	if (env) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (gpu < 0 || strncmp(environ[i], "CUDA_VISIBLE_DEVICES=", 21))
				env[k++] = environ[i];
		if (gpu >= 0) {
			snprintf(vis, sizeof vis, "CUDA_VISIBLE_DEVICES=%d", gpu);
			env[k++] = vis;
		}
		int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, env);
		if (rc != 0) {
			fprintf(stderr, "mmf-bench: cannot run %s: %s\n", argv[0], strerror(rc));
			pid = -1;
		}
	}
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* SIGINT or SIGTERM: the running scenarios are stopped and the report
 * exits, resumable (scenarios finished before are kept). */
static volatile sig_atomic_t stop_sig;
static void on_stop(int sig) { stop_sig = sig; }

static int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0); }

/* Runs argv to completion (see start); its exit status, or -1. */
static int spawn(const char *const *argv, const char *log)
{
	pid_t pid = start(argv, log, -1);
	if (pid < 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return exit_status(st);
}

/* The directory holding report.py: o->tools, $MMF_TOOLS, or tools/ next to
 * or above this program (build tree, or a GPU bundle inside the tree). */
static int find_tools(const report_opts *o, const char *self, char *out, size_t len)
{
	const char *env = getenv("MMF_TOOLS");
	char dir[4096], cand[4200];
	snprintf(dir, sizeof dir, "%s", self);
	const char *d = dirname(dir);
	const char *tries[4] = {o->tools, env && *env ? env : NULL, NULL, NULL};
	char t2[4200], t3[4200];
	snprintf(t2, sizeof t2, "%s/tools", d);
	snprintf(t3, sizeof t3, "%s/../tools", d);
	tries[2] = t2, tries[3] = t3;
	for (int i = 0; i < 4; i++) {
		if (!tries[i])
			continue;
		snprintf(cand, sizeof cand, "%s/report.py", tries[i]);
		if (exists(cand)) {
			snprintf(out, len, "%s", tries[i]);
			return 0;
		}
	}
	return -1;
}

int report_run(const report_opts *o)
{
	char self[4096], tools[4096], sub[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		fprintf(stderr, "mmf-bench: --report: cannot find this program (/proc/self/exe): %s\n", strerror(errno));
		return 1;
	}
	self[n] = 0;
	if (find_tools(o, self, tools, sizeof tools) < 0) {
		fprintf(stderr, "mmf-bench: --report: tools/report.py not found next to %s; set MMF_TOOLS to the "
			"source tree's tools/ directory\n", self);
		return 2;
	}
	const char *subs[] = {"", "/runs", "/logs", "/traces"};
	for (int i = 0; i < 4; i++) {
		snprintf(sub, sizeof sub, "%s%s", o->dir, subs[i]);
		if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
			fprintf(stderr, "mmf-bench: --report: cannot create %s: %s\n", sub, strerror(errno));
			return 1;
		}
	}
	static const char *precisions[] = {"fp16", "int8", "fp32"};
	const int np = sizeof precisions / sizeof *precisions;
	static const char *strategies[] = {"auto", "inter", "intra-block", "intra-thread"};
	static const int batches[] = {1, 4, 8};
	int nb = o->quick ? 1 : 3, ns = o->quick ? 1 : 4;
	int total = np * nb * ns + nb;
	scenario *sc = calloc((size_t)total, sizeof *sc);
	if (!sc) {
		fprintf(stderr, "mmf-bench: out of memory\n");
		return 1;
	}
	char iters[16], warmup[16], seed[32], batch[16];
	snprintf(iters, sizeof iters, "%d", o->iters);
	snprintf(warmup, sizeof warmup, "%d", o->warmup);
	snprintf(seed, sizeof seed, "%llu", o->seed);
	int k = 0;
	for (int bi = 0; bi < nb; bi++) {
		snprintf(batch, sizeof batch, "%d", batches[bi]);
		for (int pi = 0; pi < np; pi++)
			for (int si = 0; si < ns; si++) {
				scenario *s = &sc[k++];
				snprintf(s->name, sizeof s->name, "%s-b%d-%s", precisions[pi], batches[bi], strategies[si]);
				snprintf(s->what, sizeof s->what, "%s weights, batch %d+%d, %s", precisions[pi], batches[bi],
					 batches[bi], si ? strategies[si] : "every mode (fusion: auto)");
				arg(s, self);
				const char *fixed[] = {"--device", "cuda", "--model", o->model_path, "--weights", precisions[pi],
						       "--batch", NULL, "--sms", o->sms, "--iters", iters, "--warmup", warmup,
						       "--seed", seed, "--strategy", strategies[si]};
				for (size_t a = 0; a < sizeof fixed / sizeof *fixed; a++)
					arg(s, fixed[a] ? fixed[a] : keep(s, "%s", batch));
				if (si) {
					arg(s, "--modes");
					arg(s, "fused,fused-graph");
				} else {
					arg(s, "--trace");
					arg(s, keep(s, "%s/traces/%s.json", o->dir, s->name));
					if (pi == 0 && bi == 0) {	/* the per-op table and the pair microbenchmark, once */
						arg(s, "--ops");
						arg(s, "--pairs");
					}
				}
				arg(s, "--json");
				arg(s, keep(s, "%s/runs/%s.json.tmp", o->dir, s->name));
			}
		scenario *s = &sc[k++];
		snprintf(s->name, sizeof s->name, "torch-b%d", batches[bi]);
		snprintf(s->what, sizeof s->what, "PyTorch peer (open_clip, fp16), batch %d+%d", batches[bi], batches[bi]);
		arg(s, "python3");
		arg(s, keep(s, "%s/%s", tools, "torch_baseline.py"));
		const char *fixed[] = {"--weights", o->model_path, "--sms", o->sms, "--batch", NULL, "--iters", iters,
				       "--warmup", warmup};
		for (size_t a = 0; a < sizeof fixed / sizeof *fixed; a++)
			arg(s, fixed[a] ? fixed[a] : keep(s, "%s", batch));
		arg(s, "--json");
		arg(s, keep(s, "%s/runs/%s.json.tmp", o->dir, s->name));
	}
	/* Installed without SA_RESTART, so that waitpid returns for it. */
	struct sigaction sa = {0};
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int ngpu = o->gpus > 0 ? o->gpus : 1;
	printf("report: %d scenarios into %s (partitions %s, %d iterations each; %d at a time, one per GPU%s; "
	       "resumable: finished ones are kept)\n",
	       total, o->dir, o->sms, o->iters, ngpu, ngpu > 1 ? " (CUDA_VISIBLE_DEVICES)" : "");
	int failed = 0, ran = 0, running = 0;
	double spent = 0;
	struct slot { pid_t pid; int i; double t0; } slot[64];
	if (ngpu > 64)
		ngpu = 64;
	for (int g = 0; g < ngpu; g++)
		slot[g].pid = 0;
	int next = 0;
	for (;;) {
		/* fill free GPUs with scenarios still to run */
		for (int g = 0; g < ngpu && next < total && !stop_sig; g++) {
			if (slot[g].pid)
				continue;
			while (next < total) {
				scenario *s = &sc[next];
				char out[4300], log[4300];
				snprintf(out, sizeof out, "%s/runs/%s.json", o->dir, s->name);
				snprintf(log, sizeof log, "%s/logs/%s.log", o->dir, s->name);
				if (exists(out)) {
					printf("[%2d/%d] %-22s done before (%s)\n", next + 1, total, s->name, out);
					next++;
					continue;
				}
				s->argv[s->argc] = NULL;
				pid_t pid = start(s->argv, log, ngpu > 1 ? g : -1);
				if (pid < 0) {
					printf("[%2d/%d] %-22s FAILED to start\n", next + 1, total, s->name);
					failed++;
					next++;
					continue;
				}
				slot[g] = (struct slot){pid, next, now_s()};
				running++;
				int left = total - next;
				char on[32] = "";
				if (ngpu > 1)
					snprintf(on, sizeof on, ", GPU %d", g);
				if (ran)
					printf("[%2d/%d] %-22s %s%s ... (about %.0f s left)\n", next + 1, total, s->name, s->what, on,
					       spent / ran * left / ngpu);
				else
					printf("[%2d/%d] %-22s %s%s ...\n", next + 1, total, s->name, s->what, on);
				fflush(stdout);
				next++;
				break;
			}
		}
		if (!running)
			break;
		int st;
		pid_t pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno != EINTR)
				break;
			if (stop_sig)	/* stop the scenarios running: their partial results are discarded below */
				for (int g = 0; g < ngpu; g++)
					if (slot[g].pid)
						kill(slot[g].pid, SIGTERM);
			continue;
		}
		for (int g = 0; g < ngpu; g++) {
			if (slot[g].pid != pid)
				continue;
			scenario *s = &sc[slot[g].i];
			char out[4300], tmp[4310], log[4300];
			snprintf(out, sizeof out, "%s/runs/%s.json", o->dir, s->name);
			snprintf(tmp, sizeof tmp, "%s.tmp", out);
			snprintf(log, sizeof log, "%s/logs/%s.log", o->dir, s->name);
			double dt = now_s() - slot[g].t0;
			int rc = exit_status(st);
			spent += dt, ran++;
			if (rc == 0 && exists(tmp) && rename(tmp, out) == 0) {
				printf("        %-22s ok in %.0f s\n", s->name, dt);
			} else if (stop_sig) {
				printf("        %-22s stopped after %.0f s\n", s->name, dt);
				unlink(tmp);
			} else {
				printf("        %-22s FAILED (exit %d after %.0f s): see %s\n", s->name, rc, dt, log);
				unlink(tmp);
				failed++;
			}
			fflush(stdout);
			slot[g].pid = 0;
			running--;
		}
	}
	free(sc);
	if (stop_sig) {
		printf("report: stopped by signal %d; finished scenarios are kept: rerun the same command to resume\n",
		       (int)stop_sig);
		return 128 + stop_sig;
	}
	const char *render[] = {"python3", NULL, o->dir, NULL};
	char rp[4200], rlog[4300];
	snprintf(rp, sizeof rp, "%s/report.py", tools);
	snprintf(rlog, sizeof rlog, "%s/logs/report.log", o->dir);
	render[1] = rp;
	printf("report: rendering %s/REPORT.md (python3 %s %s)\n", o->dir, rp, o->dir);
	fflush(stdout);
	int rc = spawn(render, rlog);
	if (rc != 0) {
		printf("report: rendering FAILED (exit %d): see %s\n", rc, rlog);
		return 1;
	}
	printf("report: %s/REPORT.md written%s\n", o->dir, failed ? "; some scenarios FAILED (rerun to retry them)" : "");
	return failed ? 1 : 0;
}
