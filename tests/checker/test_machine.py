"""The Hypothesis machine on `upstream`, both drivers, at the `ci` profile (the default run).

This is also the three-line usage the README shows: a user gets a TestCase for a
design from `machine_test_case`.
"""

from checker.machine import machine_test_case

TestUpstreamVtd = machine_test_case("upstream", "vtd")
TestUpstreamSmmuv3 = machine_test_case("upstream", "smmuv3")
