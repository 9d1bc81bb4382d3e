"""Hypothesis strategies for success criteria of every kind (threshold, between,
within_percent; with a statistic `of` and a marginal band or not)."""

from __future__ import annotations

from hypothesis import strategies as st

from domain.test_cases import Condition, Criterion, MarginalBand, Statistic

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
statistics = st.sampled_from(list(Statistic))
bands = (
    st.none()
    | st.builds(MarginalBand, min=finite, max=st.none())
    | st.builds(MarginalBand, min=st.none(), max=finite)
    | st.tuples(finite, finite).map(lambda t: MarginalBand(min(t), max(t)))
)


def criteria_of(metrics: st.SearchStrategy[str], units: st.SearchStrategy[str]):
    """A criterion of any kind on one of `metrics`."""
    return (
        st.builds(
            Criterion,
            metric=metrics,
            condition=st.sampled_from([c for c in Condition if not c.is_range]),
            threshold=finite | st.integers(-1000, 1000),
            unit=units,
            of=statistics,
            marginal=bands,
        )
        | st.tuples(metrics, finite, finite, units, statistics, bands).map(
            lambda t: Criterion(
                t[0],
                Condition.BETWEEN,
                min=min(t[1:3]),
                max=max(t[1:3]),
                unit=t[3],
                of=t[4],
                marginal=t[5],
            )
        )
        | st.builds(
            Criterion,
            metric=metrics,
            condition=st.just(Condition.WITHIN_PERCENT),
            nominal=finite,
            percent=st.floats(min_value=0.001, max_value=1000),
            unit=units,
            of=statistics,
            marginal=bands,
        )
    )
