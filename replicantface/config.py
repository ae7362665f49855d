"""Generator configuration: quality presets and randomizer presets, loaded from TOML."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from replicantface.accessories import AccessoryConfig
from replicantface.appearance import AppearanceConfig
from replicantface.camera import CameraConfig, PostConfig
from replicantface.expression import ExpressionConfig
from replicantface.hair import HairConfig
from replicantface.identity import IdentityConfig
from replicantface.lighting import LightingConfig
from replicantface.pose import DISTRIBUTIONS, PoseComponent, PoseConfig

PRESET_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"
DEFAULT_RESOLUTION = 640


class ConfigError(ValueError):
    """A bad configuration value; the message names the key and what is allowed."""


@dataclass(frozen=True)
class QualityPreset:
    name: str
    samples: int
    adaptive_threshold: float
    denoise: bool
    max_bounces: int
    resolution: int
    denoise_quality: str = "HIGH"


QUALITY = {
    "test": QualityPreset("test", samples=4, adaptive_threshold=0.0, denoise=False, max_bounces=2,
                          resolution=96),
    # For the workbench: a slider move re-renders in under 1 s on a 2-core CPU (render ~0.5 s
    # at 192 px, 4 spp; benchmarks/bench_workbench_latency.py).
    "interactive": QualityPreset("interactive", samples=4, adaptive_threshold=0.0, denoise=True,
                                 max_bounces=2, resolution=192, denoise_quality="FAST"),
    "preview": QualityPreset("preview", samples=16, adaptive_threshold=0.05, denoise=True,
                             max_bounces=4, resolution=DEFAULT_RESOLUTION, denoise_quality="FAST"),
    "final": QualityPreset("final", samples=64, adaptive_threshold=0.01, denoise=True,
                           max_bounces=8, resolution=DEFAULT_RESOLUTION),
}


@dataclass(frozen=True)
class GeneratorConfig:
    """Every randomizer's settings. Loaded from assets/presets/<name>.toml or a user file."""

    preset: str = "default"
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    expression: ExpressionConfig = field(default_factory=ExpressionConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)
    lighting: LightingConfig = field(default_factory=LightingConfig)
    post: PostConfig = field(default_factory=PostConfig)
    hair: HairConfig = field(default_factory=HairConfig)
    accessories: AccessoryConfig = field(default_factory=AccessoryConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {f.name: f for f in dataclasses.fields(GeneratorConfig) if f.name != "preset"}

# Allowed ranges of numeric fields; anything else only has to have the right type.
_RANGES = {
    "age_years_min": (0.0, 90.0), "age_years_max": (0.0, 90.0),
    "face_change_std": (0.0, 1.0), "face_change_max": (0.0, 1.0), "symmetric_change_prob": (0.0, 1.0),
    "neutral_prob": (0.0, 1.0), "preset_prob": (0.0, 1.0), "symmetric_prob": (0.0, 1.0),
    "extra_weight_max": (0.0, 1.0), "extra_actions_max": (0, 20),
    "head_yaw_deg": (0.0, 180.0), "head_pitch_deg": (0.0, 90.0), "head_roll_deg": (0.0, 90.0),
    "camera_heading_deg": (0.0, 180.0), "camera_pitch_deg": (0.0, 80.0),
    "head_beta_a": (0.05, 100.0), "camera_beta_a": (0.05, 100.0), "weight": (0.0, 1000.0),
    "head_yaw_offset_deg": (-90.0, 90.0), "head_pitch_offset_deg": (-90.0, 90.0),
    "head_roll_offset_deg": (-90.0, 90.0), "camera_heading_offset_deg": (-180.0, 180.0),
    "camera_pitch_offset_deg": (-80.0, 80.0),
    "face_fraction_min": (0.05, 1.0), "face_fraction_max": (0.05, 1.0),
    "fstop_min": (0.5, 64.0), "fstop_max": (0.5, 64.0), "shift_max": (0.0, 0.5),
    "gaze_yaw_deg_max": (0.0, 45.0), "gaze_pitch_deg_max": (0.0, 40.0),
    "tint_max": (0.0, 0.5), "backdrop_prob": (0.0, 1.0), "extra_light_prob": (0.0, 1.0),
    "extra_light_kelvin_min": (1000.0, 15000.0), "extra_light_kelvin_max": (1000.0, 15000.0),
    "extra_light_duv_max": (0.0, 0.02),
    "min_face_luminance": (0.0, 255.0), "max_attempts": (1, 10),
    "face_exposure_min": (0.0, 2.0), "face_exposure_max": (0.0, 2.0), "exposure_max_ev": (0.0, 6.0),
    "white_balance_min": (0.0, 1.0), "white_balance_max": (0.0, 1.0),
    "strength_min": (0.0, 20.0), "strength_max": (0.0, 20.0),
    "background_strength_min": (0.0, 20.0), "background_strength_max": (0.0, 20.0),
    "noise_prob": (0.0, 1.0), "noise_std_max": (0.0, 0.2),
    "jpeg_quality_min": (1, 100), "jpeg_quality_max": (1, 100),
    "beard_prob_male": (0.0, 1.0), "bald_age_gain": (0.0, 10.0), "grey_age_start": (0.0, 120.0),
    "grey_age_full": (0.0, 120.0), "brow_grey_delay_years": (0.0, 60.0), "density_min": (0.1, 3.0),
    "density_max": (0.1, 3.0), "pattern_prob": (0.0, 1.0),
    "freckle_prob": (0.0, 1.0), "mole_prob": (0.0, 1.0), "blemish_prob": (0.0, 1.0),
    "makeup_prob": (0.0, 1.0), "makeup_prob_male": (0.0, 1.0), "wrinkle_scale": (0.0, 3.0),
}
# Tables of numbers (name -> value): the range of every value. Allowed names come from the
# section's ``allowed_names(key)`` when it has one, else from the default table.
_MAPPING_RANGES = {"probabilities": (0.0, 1.0)}
_WEIGHT_RANGE = (0.0, 1000.0)
# Lists of numbers: the range of every element; a ``*_weights`` list takes _WEIGHT_RANGE.
# Focal lengths span the workbench's focal slider.
_LIST_RANGES = {"focal_mm_choices": (12.0, 200.0)}


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name: str) -> GeneratorConfig:
    path = PRESET_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
    return load_config(path, preset_name=name)


def load_config(path: Path, preset_name: str | None = None) -> GeneratorConfig:
    """Parse and validate a TOML config file into a GeneratorConfig."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))  # TOML files are UTF-8
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); a TOML config must be UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return config_from_dict(data, preset_name or path.stem, source=str(path))


def config_from_dict(data: dict, name: str, source: str = "config") -> GeneratorConfig:
    sections = {}
    for key, value in data.items():
        if key not in _SECTIONS:
            raise ConfigError(f"{source}: unknown section [{key}]; allowed: {', '.join(_SECTIONS)}")
        cls = _SECTIONS[key].default_factory
        sections[key] = _build_section(cls, value, f"{source}: [{key}]")
    return GeneratorConfig(preset=name, **sections)


def _build_section(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    clean = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed: {', '.join(fields)}")
        default = getattr(defaults, key)
        if cls is PoseConfig and key == "components":
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where}: components must be a non-empty array of tables")
            value = tuple(_build_section(PoseComponent, item, f"{where}.components[{i}]")
                          for i, item in enumerate(value))
            if sum(c.weight for c in value) <= 0:
                raise ConfigError(f"{where}: the component weights must not all be 0")
        elif key == "distribution":
            if value not in DISTRIBUTIONS:
                raise ConfigError(f"{where}: distribution = {value!r}; allowed: {', '.join(DISTRIBUTIONS)}")
        elif isinstance(default, dict):
            value = _build_mapping(cls, key, value, default, where)
        elif isinstance(default, tuple):
            value = _build_list(key, value, default, where)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: {key} must be true or false")
        elif fields[key].type in ("int", int):  # a count: range() and friends need an int
            if not _is_number(value) or (isinstance(value, float) and not value.is_integer()):
                raise ConfigError(f"{where}: {key} must be a whole number, got {_toml(value)}")
            value = int(value)  # 2.0 means 2 and draws the same numbers
            lo, hi = _RANGES.get(key, (float("-inf"), float("inf")))
            if not lo <= value <= hi:
                raise ConfigError(f"{where}: {key} = {value} is out of range [{lo}, {hi}]")
        elif isinstance(default, (int, float)):
            if not _is_number(value):
                raise ConfigError(f"{where}: {key} must be a number")
            lo, hi = _RANGES.get(key, (float("-inf"), float("inf")))
            if not lo <= value <= hi:
                raise ConfigError(f"{where}: {key} = {value} is out of range [{lo}, {hi}]")
        clean[key] = value
    for key in fields:  # every range given as a ``x_min`` / ``x_max`` pair
        if key.endswith("_min") and f"{key[:-4]}_max" in fields:
            hi_key = f"{key[:-4]}_max"
            lo, hi = (clean.get(k, getattr(defaults, k)) for k in (key, hi_key))
            if lo > hi:
                raise ConfigError(f"{where}: {key} = {lo} is larger than {hi_key} = {hi}")
    try:
        return cls(**clean)
    except ValueError as exc:  # a section's own cross-field checks
        raise ConfigError(f"{where}: {exc}") from exc


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _toml(value) -> str:
    """A value as the config file spells it (true, not True)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _build_list(key: str, value, default: tuple, where: str) -> tuple:
    """A list of numbers such as ``focal_mm_choices``; every element is range-checked. A list
    whose default has elements may not be empty (an empty default means "use the built-in")."""
    if not isinstance(value, (list, tuple)) or not all(_is_number(v) for v in value):
        raise ConfigError(f"{where}: {key} must be a list of numbers")
    if default and not value:
        raise ConfigError(f"{where}: {key} must not be empty")
    unbounded = (float("-inf"), float("inf"))
    lo, hi = _LIST_RANGES.get(key, _WEIGHT_RANGE if key.endswith("_weights") else unbounded)
    for i, v in enumerate(value):
        if not lo <= v <= hi:
            raise ConfigError(f"{where}: {key}[{i}] = {v} is out of range [{lo}, {hi}]")
    return tuple(value)


def _build_mapping(cls, key: str, value, default: dict, where: str) -> dict:
    """A table of numbers such as ``[accessories.probabilities]``; merged over the defaults."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table of name = number")
    allowed = cls.allowed_names(key) if hasattr(cls, "allowed_names") else tuple(default)
    lo, hi = _MAPPING_RANGES.get(key, _WEIGHT_RANGE)
    for name, v in value.items():
        if name not in allowed:
            raise ConfigError(f"{where}: {key}.{name} is not known; allowed: {', '.join(allowed)}")
        if not _is_number(v):
            raise ConfigError(f"{where}: {key}.{name} must be a number")
        if not lo <= v <= hi:
            raise ConfigError(f"{where}: {key}.{name} = {v} is out of range [{lo}, {hi}]")
    return {**default, **{name: float(v) for name, v in value.items()}}
