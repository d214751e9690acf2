/* report: mmf-bench --report DIR, the scenario matrix behind the analysis
 * report. Each scenario is one run of this same program (or of the
 * PyTorch peer, tools/torch_baseline.py) writing DIR/runs/NAME.json, with
 * its output in DIR/logs/NAME.log; a scenario whose JSON exists is not run
 * again, so an interrupted report resumes where it stopped. At the end
 * tools/report.py turns DIR/runs into DIR/REPORT.md and PNG plots. */
#ifndef MMF_REPORT_H
#define MMF_REPORT_H

typedef struct report_opts {
	const char *dir;
	const char *model_path;	/* resolved model file (the peer loads the same) */
	const char *sms;	/* partitions, "8,16,32,all" */
	int iters, warmup;
	unsigned long long seed;
	int quick;		/* batch 1 only, strategy auto only (a smoke run) */
	int gpus;		/* run this many scenarios at once, one per GPU (0, 1: one at a time) */
	const char *tools;	/* directory holding report.py and torch_baseline.py, or NULL: found */
} report_opts;

/* Returns 0 when every scenario ran (or had run) and the report was
 * written, 1 when some scenario failed (the others still run), 2 for a
 * usage error. */
int report_run(const report_opts *o);

#endif
