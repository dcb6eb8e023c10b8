"""The laws of the demo farm: feeding curves, weight gain, barn climate, mortality, ITM, grades.

The demo generator (domain/demo.py) draws every lot from these functions, so the ML jobs have
real structure to find. The ITM law in particular is an exact closed form of three lot features
plus Gaussian noise of known size: symbolic regression should rediscover `hidden_itm`, and an
R^2 close to 1 - ITM_NOISE_STD**2 / var(itm) is reachable from the lot table alone.

All functions are pure: they take a numpy Generator and return arrays, one entry per meal in
the order day 1 morning, day 1 evening, day 2 morning...
"""

from __future__ import annotations

from datetime import date

import numpy as np

from domain.models import Grade

ITM_NOISE_STD = 0.15
HIDDEN_ITM_FORMULA = (
    "itm = 4.0 + 1.2*dose_totale_kg - 1.0*poids_initial_kg + 0.014*temperature_moyenne_c**2"
)
MEALS_PER_DAY = 2
TOF_GRID = 8
TOF_SENSOR_HEIGHT_MM = 140.0
LIGHT_LIVER_G = 450.0
HEAVY_LIVER_G = 800.0
GRADE_SCORE = {Grade.A_PLUS: 4.6, Grade.A: 4.0, Grade.B: 3.0, Grade.C: 2.1}


def hidden_itm(
    dose_totale_kg: float, poids_initial_kg: float, temperature_moyenne_c: float
) -> float:
    """The true ITM (kg of maize eaten per kg of liver) of a lot, before noise.

    - dose_totale_kg: maize eaten per duck over the whole feeding (lots.total_maize_kg_per_duck)
    - poids_initial_kg: mean weight at the start (lots.initial_weight_g / 1000)
    - temperature_moyenne_c: mean barn temperature of the lot (lots.mean_temperature_c)

    Stored lots have itm = hidden_itm(...) + N(0, ITM_NOISE_STD) and
    mean_liver_weight_g = 1000 * total_maize_kg_per_duck / itm. Heat raises the ITM (less liver
    for the same maize); a heavier duck at the start converts maize into liver better.
    Works element-wise on numpy arrays too.
    """
    return 4.0 + 1.2 * dose_totale_kg - 1.0 * poids_initial_kg + 0.014 * temperature_moyenne_c**2


def seasonal_temperature_c(days: list[date]) -> np.ndarray:
    """Mean barn temperature for each date: coolest in late January, warmest in late July."""
    day_of_year = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    return 20.5 + 5.5 * np.sin(2 * np.pi * (day_of_year - 110) / 365.25)


def dose_curve(
    rng: np.random.Generator, *, duration_days: int, style: float, irregularity: float
) -> np.ndarray:
    """Maize per duck for each meal (g), rounded to 0.1 g.

    The ramp is concave: gaveurs raise the dose quickly over the first days, then level off
    near the duck's capacity. `style` is the gaveur's habit (0.9..1.1), `irregularity` the
    relative meal-to-meal noise of this lot (a less regular hand gives a worse product).
    """
    first = rng.uniform(220.0, 260.0)
    last = rng.uniform(500.0, 580.0)
    progress = np.arange(duration_days) / max(duration_days - 1, 1)
    per_day = first + (last - first) * progress**0.7
    # The evening meal is slightly larger: the night is longer than the afternoon.
    per_meal = np.repeat(per_day, MEALS_PER_DAY) * np.tile([0.98, 1.02], duration_days)
    noise = 1.0 + rng.normal(0.0, irregularity, per_meal.size)
    return np.round(per_meal * style * np.clip(noise, 0.6, 1.4), 1)


def barn_climate(
    rng: np.random.Generator, *, meal_dates: list[date], lot_offset_c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Temperature (°C, 14..28) and relative humidity (%, 50..90) at each meal."""
    seasonal = seasonal_temperature_c(meal_dates)
    meal_offset = np.tile([-1.2, 1.2], len(meal_dates) // MEALS_PER_DAY + 1)[: len(meal_dates)]
    temperature = seasonal + lot_offset_c + meal_offset + rng.normal(0.0, 0.8, len(meal_dates))
    temperature = np.round(np.clip(temperature, 14.0, 28.0), 1)
    humidity = 72.0 - 1.2 * (temperature - 20.0) + rng.normal(0.0, 5.0, len(meal_dates))
    return temperature, np.round(np.clip(humidity, 50.0, 90.0), 1)


def weight_curve(
    rng: np.random.Generator,
    *,
    initial_weight_g: float,
    doses_g: np.ndarray,
    temperatures_c: np.ndarray,
    efficiency: float,
) -> tuple[np.ndarray, np.ndarray]:
    """True and recorded mean weight (g) after each meal.

    Gain is proportional to the maize eaten (`efficiency` g of weight per g of maize, about
    0.17..0.20), reduced by about 1.2 % per degree above 22 °C: heat costs feed efficiency.
    """
    heat_penalty = 1.0 - 0.012 * np.clip(temperatures_c - 22.0, 0.0, None)
    true_weight = initial_weight_g + np.cumsum(efficiency * heat_penalty * doses_g)
    recorded = np.round(true_weight + rng.normal(0.0, 12.0, true_weight.size), 1)
    return true_weight, recorded


def meal_deaths(
    rng: np.random.Generator, *, ducks_start: int, temperatures_c: np.ndarray, base_rate: float
) -> np.ndarray:
    """Expected and drawn deaths per meal: Poisson, about 20 % likelier per degree above 24 °C."""
    expected = ducks_start * base_rate * (1.0 + 0.2 * np.clip(temperatures_c - 24.0, 0.0, None))
    return rng.poisson(expected)


def lot_itm(
    rng: np.random.Generator,
    *,
    total_maize_kg: float,
    initial_weight_g: float,
    mean_temperature_c: float,
) -> float:
    """The observed ITM of a lot: the hidden law plus N(0, ITM_NOISE_STD), rounded to 0.001."""
    exact = hidden_itm(total_maize_kg, initial_weight_g / 1000.0, mean_temperature_c)
    return round(float(exact + rng.normal(0.0, ITM_NOISE_STD)), 3)


def grade_livers(
    rng: np.random.Generator,
    weights_g: np.ndarray,
    *,
    mean_temperature_c: float,
    irregularity: float,
) -> list[Grade]:
    """Grade each liver: C when light, B when very heavy (melting) or heat-stressed, A+ in the
    550-750 g sweet spot from a regular feeding, A otherwise."""
    heat_stress_p = float(np.clip((mean_temperature_c - 23.5) / 4.0, 0.0, 0.8))
    irregular_p = float(np.clip((irregularity - 0.05) / 0.06, 0.0, 0.7))
    grades = []
    for weight, heat_draw, hand_draw in zip(
        weights_g, rng.random(weights_g.size), rng.random(weights_g.size), strict=True
    ):
        if weight < LIGHT_LIVER_G:
            grades.append(Grade.C)
        elif weight > HEAVY_LIVER_G or heat_draw < heat_stress_p:
            grades.append(Grade.B)
        elif 550.0 <= weight <= 750.0 and hand_draw >= irregular_p:
            grades.append(Grade.A_PLUS)
        else:
            grades.append(Grade.A)
    return grades


def tof_maps(rng: np.random.Generator, weights_g: np.ndarray, grades: list[Grade]) -> np.ndarray:
    """8x8 time-of-flight distance maps (mm, flattened to 64 zones) of livers on a tray.

    The sensor sits TOF_SENSOR_HEIGHT_MM above the tray; a liver is a dome whose height and
    footprint grow with the cube root of its weight, so heavier livers give smaller distances.
    Grade C livers carry 2-4 bumps or hollows (haematomas, torn lobes) a quality model can see.
    """
    n = weights_g.size
    axis = np.arange(TOF_GRID, dtype=float)
    xs, ys = np.meshgrid(axis, axis)
    centre_x = 3.5 + rng.normal(0.0, 0.4, n)[:, None, None]
    centre_y = 3.5 + rng.normal(0.0, 0.4, n)[:, None, None]
    # Volume follows weight: thickness grows as its cube root and so does each footprint axis.
    size = np.cbrt(weights_g / 650.0)[:, None, None]
    spread_x = 2.2 * size * rng.uniform(0.95, 1.05, n)[:, None, None]
    spread_y = 1.6 * size * rng.uniform(0.95, 1.05, n)[:, None, None]
    profile = np.exp(
        -((xs - centre_x) ** 2) / (2 * spread_x**2) - ((ys - centre_y) ** 2) / (2 * spread_y**2)
    )
    height = 48.0 * size
    distances = TOF_SENSOR_HEIGHT_MM - height * profile + rng.normal(0.0, 0.6, (n, 8, 8))
    for index, grade in enumerate(grades):
        if grade is Grade.C:
            n_defects = int(rng.integers(2, 5))
            cells = rng.choice(TOF_GRID * TOF_GRID, size=n_defects, replace=False)
            signs = rng.choice([-1.0, 1.0], size=n_defects)
            distances[index].flat[cells] += signs * rng.uniform(6.0, 12.0, n_defects)
    return np.round(distances.reshape(n, TOF_GRID * TOF_GRID), 1)


def quality_score(grades: list[Grade], *, irregularity: float) -> float:
    """What consumers taste, on a 1-5 scale: the grades, minus a penalty for an irregular hand."""
    if not grades:
        return 3.5
    base = float(np.mean([GRADE_SCORE[g] for g in grades]))
    return base - 6.0 * max(irregularity - 0.05, 0.0)
