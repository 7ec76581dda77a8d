"""scikit-learn's own estimator checks (`parametrize_with_checks`) on both estimators.

Tiny networks and few epochs keep every fit cheap; `jit_compile=False` because
the checks fit data of a dozen shapes, and XLA would compile a program for each
(about 3 s apiece) where plain graph mode traces in a fraction of that. The
training checks still need a fitted model (R^2 > 0.5, accuracy > 0.83), hence
the learning rate.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from tfbnn import BayesianClassifier, BayesianRegressor

CHEAP = dict(hidden_units=(8,), epochs=30, learning_rate=0.02, n_samples=5, random_state=0,
             inference_options={"jit_compile": False})


@parametrize_with_checks([BayesianRegressor(**CHEAP), BayesianClassifier(**CHEAP)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
