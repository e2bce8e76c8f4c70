#!/usr/bin/env python3
"""faiss IndexFlatIP, one thread, top-10 search p50: the yardstick beside Coda's search figures.

`cargo bench --bench core` runs this itself (when `python3 -c 'import faiss'` succeeds) on the
very vectors and queries it just searched, written as raw little-endian f32 rows:

    faiss_side_by_side.py DIMS BASE.f32 QUERIES.f32 [K]

Standalone, on gaussian unit vectors (not the bench's data, so not a side-by-side figure):

    faiss_side_by_side.py --random N DIMS [QUERIES]

HNSW beside Coda's `index = "hnsw"` (build on every thread, searches on one; recall@10
against IndexFlatIP on the same vectors), one line per efSearch:

    faiss_side_by_side.py --hnsw M EF_CONSTRUCTION EF_SEARCH[,EF_SEARCH...] DIMS BASE.f32 QUERIES.f32

Needs `pip install faiss-cpu numpy`. Prints a line in the bench's format and, last, a line
`faiss_p50_us <value>` for the bench to read.
"""

import sys
import time

import faiss
import numpy as np


def search_p50(base, queries, k):
    faiss.omp_set_num_threads(1)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    for q in queries[: min(10, len(queries))]:  # warm-up, as the bench's first queries are
        index.search(q[None, :], k)
    samples = []
    for q in queries:
        one = q[None, :]
        start = time.perf_counter()
        index.search(one, k)
        samples.append(time.perf_counter() - start)
    samples.sort()

    def pct(p):
        return samples[min(len(samples) - 1, round((len(samples) - 1) * p))]

    return pct(0.5), pct(0.99)


def hnsw(argv):
    m, ef_construction = int(argv[0]), int(argv[1])
    ef_searches = [int(e) for e in argv[2].split(",")]
    dims = int(argv[3])
    base = np.ascontiguousarray(np.fromfile(argv[4], dtype="<f4").reshape(-1, dims))
    queries = np.ascontiguousarray(np.fromfile(argv[5], dtype="<f4").reshape(-1, dims))
    k = 10
    flat = faiss.IndexFlatIP(dims)
    flat.add(base)
    _, truth = flat.search(queries, k)
    index = faiss.IndexHNSWFlat(dims, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    threads = faiss.omp_get_max_threads()
    start = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - start
    print(
        f"faiss IndexHNSWFlat build {len(base)} x {dims}: {build:.1f} s on {threads} threads "
        f"(M {m}, efConstruction {ef_construction}, faiss {faiss.__version__})"
    )
    faiss.omp_set_num_threads(1)
    for ef in ef_searches:
        index.hnsw.efSearch = ef
        for q in queries[: min(10, len(queries))]:
            index.search(q[None, :], k)
        samples, found = [], 0
        for i, q in enumerate(queries):
            start = time.perf_counter()
            _, ids = index.search(q[None, :], k)
            samples.append(time.perf_counter() - start)
            found += len(set(ids[0]) & set(truth[i]))
        samples.sort()
        p50 = samples[(len(samples) - 1) // 2]
        p99 = samples[min(len(samples) - 1, round((len(samples) - 1) * 0.99))]
        print(
            f"summary faiss hnsw {len(base)} x {dims} ef {ef}: p50 {p50 * 1e3:.3f} ms, "
            f"p99 {p99 * 1e3:.3f} ms, recall@10 {found / (k * len(queries)):.4f} (1 thread)"
        )
    return 0


def main(argv):
    if len(argv) >= 6 and argv[0] == "--hnsw":
        return hnsw(argv[1:])
    if len(argv) >= 3 and argv[0] == "--random":
        n, dims = int(argv[1]), int(argv[2])
        nq = int(argv[3]) if len(argv) > 3 else 200
        rng = np.random.default_rng(7)
        base = rng.standard_normal((n, dims), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
        queries = rng.standard_normal((nq, dims), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        k = 10
    elif len(argv) >= 3:
        dims = int(argv[0])
        base = np.fromfile(argv[1], dtype="<f4").reshape(-1, dims)
        queries = np.fromfile(argv[2], dtype="<f4").reshape(-1, dims)
        k = int(argv[3]) if len(argv) > 3 else 10
    else:
        print(__doc__, file=sys.stderr)
        return 2
    p50, p99 = search_p50(np.ascontiguousarray(base), np.ascontiguousarray(queries), k)
    name = f"faiss IndexFlatIP top-{k} over {len(base)}"
    print(
        f"{name:<34} n={len(queries):<6} p50 {p50 * 1e6:>10.3f} µs   p99 {p99 * 1e6:>10.3f} µs"
        f"   (faiss {faiss.__version__}, 1 thread)"
    )
    print(f"faiss_p50_us {p50 * 1e6:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
