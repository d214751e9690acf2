/* sortcmp: qsort comparators for the medians and percentiles that the
 * benchmarks, the planner and the tools take (one copy, not one per file). */
#ifndef MMF_SORTCMP_H
#define MMF_SORTCMP_H

static inline int mmf_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static inline int mmf_cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

static inline int mmf_cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

#endif
