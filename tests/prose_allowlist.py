"""The allow-list of tests/check_prose_numbers.py: per chapter, the numbers its prose may type.

Each entry is a number as the prose writes it and the reason it is not a result: a parameter
the chapter sets (it must then also appear in one of the chapter's code cells), or, marked
with ``NOT_A_RESULT``, a constant such as a version or a mathematical constant. Keep it short:
a computed result belongs in a glue, not here.
"""

from __future__ import annotations

NOT_A_RESULT = "not a result: "
ALLOWED: dict[str, dict[str, str]] = {
    "numerics-performance": {
        "10^{-3}": "the temperature EDGE_TAU of the edge cases",
    },
    "intro": {
        "10^{-6}": "the false-failure rate ALPHA of the z-test",
        "2.95": "the constant of the deliberately wrong loss",
        "0.5": "a logit of the example, set in the figure cell",
        "0.62": "the fixed uniform u_fixed of the figure",
        "3.11": NOT_A_RESULT + "the Python version the book needs",
    },
    "biased-die": {
        "0.05": "a face probability of the die, P_TRUE",
        "0.1": "a face probability of the die, P_TRUE; the temperature of Exercise 4",
        "0.13": "a face probability of the die, P_TRUE",
        "0.27": "a face probability of the die, P_TRUE",
        "0.4": "a face probability of the die, P_TRUE",
        "0.5": "the final temperature of the schedule",
        "0.02": "the learning rate LR",
        "10^{-12}": "the tolerance the hand/autograd comparison asserts",
    },
    "straight-through": {
        "0.5": "a temperature of the checks",
        "0.1": "a temperature of the checks",
        "0.3": "a temperature of the bias table",
    },
    "gradient": {
        "10^{-6}": "the finite-difference step and the tests' false-failure rate",
        "10^{-10}": "the finite-difference bound the cell asserts",
        "10^{-12}": "a tolerance the cells assert (truncation error of the step squared)",
        "10^{-14}": "the autograd bound the cell asserts",
        "10^{-16}": NOT_A_RESULT + "the order of float64 rounding, a constant",
        "0.5": "the floor of Jang et al.'s schedule",
        "10^{-4}": "the rate r of Jang et al.'s schedule",
    },
    "gumbel-distribution": {
        "0.5772": NOT_A_RESULT + "the Euler-Mascheroni constant, a mathematical constant",
        "0.577": NOT_A_RESULT + "the Euler-Mascheroni constant, a mathematical constant",
        "10^{-6}": "the false-failure rate ALPHA (and miss rate) of the tests",
        "10^{6}": "2 / alpha in the sample-size formula, alpha = 1e-6",
        "0.01": "the cdf error the tests are sized to detect",
        "0.001": "the discrepancy of Exercise 4",
        "10^{-4}": "the discrepancy of Exercise 4",
    },
    "location-shift": {
        "10^{-6}": "the chapter's false-failure budget",
        "0.01": "the cdf error the DKWM test is sized to detect",
        "0.05": "the effect size w the chi-square test is sized to detect",
    },
    "logistic-difference": {
        "1.2": "the location mu_1 of the Monte Carlo test",
        "0.3": "the location mu_2 = -0.3; a temperature of the figure",
        "0.8": "the scale of the Monte Carlo test",
        "0.01": "the cdf error the DKWM test is sized to detect",
        "2.5": "the squared scale 5/2 of the moment-matched logistic, set in the code",
    },
    "max-of-gumbels": {
        "0.05": "the effect size w the chi-square test is sized to detect",
    },
    "reproducibility": {
        "10^{-6}": NOT_A_RESULT + "the false-failure rate the other chapters set",
    },
    "softmax-relaxation": {
        "10^{-6}": "false-failure rates and miss rates of the tests",
        "0.02": "the cdf error the Monte Carlo test is sized to detect",
        "0.6": "an option value of case 1 (values)",
        "0.5": "temperature and target value of the two cases",
        "0.3": "case 2's payoff and an example logit",
        "0.2": "an example logit of the limit check",
        "0.1": "a temperature of the annealing runs",
        "0.01": "the decay rate of the annealing schedule",
        "10^{-2}": "an epsilon of Exercise 3",
        "10^{-4}": "an epsilon of Exercise 3",
    },
    "sampling-without-replacement": {
        "0.01": "the Kolmogorov distance the DKWM test of the losers is sized to detect",
        "0.05": "the effect size w the chi-square tests are sized to detect",
        "0.1": "the seed note's temperature, one of the temperatures the cells run",
        "0.5": "a temperature of the cells; the floor Jang et al. report, run in jang_schedule",
        "0.001": "the lowest temperature of the low-temperature comparison",
        "10^{-4}": "a rate r that Jang et al. report, run in jang_schedule",
        "10^{-5}": "a rate r that Jang et al. report, run in jang_schedule",
    },
    "lower-variance-gradients": {
        "0.8": "the logit gap Delta of the K = 2 straight-through check",
        "95%": "the level of the interval that format_table prints (asserted in the cell)",
        "0.05": "the learning rate lr of the training cell",
    },
}
