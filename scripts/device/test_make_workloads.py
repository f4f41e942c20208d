#!/usr/bin/env python3
"""Tests of make_workloads.py (standard library only).

    python3 scripts/device/test_make_workloads.py -v
"""

import os
import random
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_workloads as mw  # noqa: E402


class Workloads(unittest.TestCase):
    def test_exact_rates_and_ranges(self):
        for w in mw.WORKLOADS.values():
            rows = w.rows()
            self.assertEqual(len(rows), w.n, w.name)
            times = [t for t, _, _ in rows]
            self.assertEqual(times, sorted(times), w.name)
            self.assertEqual(times[0], 0.0, w.name)
            if w.kind in ("poisson", "gamma"):
                self.assertAlmostEqual((len(rows) - 1) / times[-1], w.rate, places=3, msg=w.name)
            if w.kind == "burst":
                self.assertEqual(set(times), {0.0})
            lo, hi = w.kw.get("prompt", mw.PROMPT)
            if w.kind != "ladder" and not w.kw.get("long_frac"):
                self.assertTrue(all(lo <= p <= hi for _, p, _ in rows), w.name)
            if w.kind != "ladder":
                self.assertTrue(all(16 <= o <= 256 for _, _, o in rows), w.name)

    def test_deterministic(self):
        for w in mw.WORKLOADS.values():
            self.assertEqual(w.rows(), w.rows(), w.name)

    def test_calibration_and_judging_are_separate(self):
        calib = {w.seed for w in mw.WORKLOADS.values() if w.role == "calib"}
        judge = {w.seed for w in mw.WORKLOADS.values() if w.role == "judge"}
        warm = {w.seed for w in mw.WORKLOADS.values() if w.role == "warmup"}
        self.assertFalse(calib & judge)
        self.assertFalse(warm & judge)
        files = {}
        for phase, run, wname in mw.PLAN:
            files.setdefault(wname, set()).add(mw.WORKLOADS[wname].role)
        self.assertTrue(all(len(roles) == 1 for roles in files.values()))

    def test_plan_covers_issue_5(self):
        runs = [run for _, run, _ in mw.PLAN]
        self.assertEqual(len(runs), len(set(runs)))
        rates = {mw.WORKLOADS[w].rate for ph, _, w in mw.PLAN
                 if mw.WORKLOADS[w].role == "judge" and mw.WORKLOADS[w].kind == "poisson"
                 and "prompt" not in mw.WORKLOADS[w].kw}
        self.assertGreaterEqual(len(rates), 5)  # a load sweep of at least 5 rates
        self.assertGreaterEqual(max(rates), 6)  # past the knee
        reps = [w for _, _, w in mw.PLAN if w == "judge-poisson-2qps"]
        self.assertEqual(len(reps), 3)  # noise floor
        kinds = {mw.WORKLOADS[w].kind for _, _, w in mw.PLAN}
        self.assertTrue({"gamma", "burst"} <= kinds)
        longp = [w for _, _, w in mw.PLAN if mw.WORKLOADS[w].kw.get("prompt") == mw.LONG_PROMPT]
        self.assertTrue(longp)
        self.assertEqual(mw.PLAN[0][1], "cold40-poisson-2qps")  # the issue's 40 requests come first
        total = sum(r["est_s"] for r in mw.plan_rows())
        self.assertLess(total, 15.5 * 60)  # the device budget

    def test_session_2(self):
        """Session 2 (--set s2): >= 200 requests at >= 2 req/s, new seeds, fits the device budget."""
        s1_seeds = {w.seed for w in mw.WORKLOADS.values() if w.kind != "ladder"}
        s2 = mw.S2_WORKLOADS
        self.assertFalse(s1_seeds & {w.seed for w in s2.values() if w.kind != "ladder"})
        self.assertEqual(len({w.seed for w in s2.values()}), len(s2))
        for w in s2.values():
            rows = w.rows()
            self.assertEqual(len(rows), w.n, w.name)
            if w.kind in ("poisson", "gamma"):
                self.assertAlmostEqual((len(rows) - 1) / rows[-1][0], w.rate, places=3, msg=w.name)
            if w.kind != "ladder":
                lo, hi = w.kw.get("prompt", mw.PROMPT)
                if not w.kw.get("long_frac"):
                    self.assertTrue(all(lo <= p <= hi for _, p, _ in rows), w.name)
                self.assertTrue(all(16 <= o <= 256 for _, _, o in rows), w.name)
        runs = [run for _, run, _ in mw.S2_PLAN]
        self.assertEqual(len(runs), len(set(runs)))
        self.assertEqual(runs[:3], ["cold40-poisson-2qps", "warmup-ladder", "overload-poisson-8qps"])
        for phase, run, wname in mw.S2_PLAN:
            w = s2[wname]
            if w.role == "judge" and (w.kind == "burst" or (w.rate or 0) >= 2):
                self.assertGreaterEqual(w.n, 200, run)
        self.assertEqual(sum(1 for _, _, w in mw.S2_PLAN if w == "judge-poisson-2qps"), 3)
        saved = mw.WORKLOADS, mw.PLAN
        try:
            mw.WORKLOADS, mw.PLAN = mw.S2_WORKLOADS, mw.S2_PLAN
            total = sum(r["est_s"] for r in mw.plan_rows())
        finally:
            mw.WORKLOADS, mw.PLAN = saved
        self.assertLess(total, 21.5 * 60)  # ~21 min of recording + setup in 30 device minutes

    def test_exact_rate_rescaling(self):
        rng = random.Random(1)
        gaps = [rng.expovariate(3.0) for _ in range(9)]
        t = mw.exact_rate(gaps, 3.0)
        self.assertEqual(len(t), 10)
        self.assertAlmostEqual(t[-1], 3.0)


if __name__ == "__main__":
    unittest.main()
