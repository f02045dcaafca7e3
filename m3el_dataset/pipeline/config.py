"""Settings of the construction pipeline, as dataclasses.

Every base URL is a setting so that tests (and mirrors) can point the pipeline at another server. Defaults are the
polite production values; tests scale the delays down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..constants import TOPICS, check_topic

DEFAULT_USER_AGENT = "m3el-pipeline/0.1 (M3EL dataset construction; https://huggingface.co/datasets/m3el) urllib"


@dataclass
class HttpSettings:
    """How the pipeline talks to the network.

    Args:
        user_agent (`str`): descriptive User-Agent with a contact, as the Wikimedia policy asks.
        timeout_s (`float`, *optional*, defaults to 30): socket timeout of one request (the longest wait for a byte).
        deadline_s (`float`, *optional*, defaults to 300): the longest one request may take, connection, headers and
            body together (each redirect hop and each retry has its own): a server trickling bytes just fast enough
            never to trip ``timeout_s`` is cut off, and the request fails as a retryable error.
        max_retries (`int`, *optional*, defaults to 5): retries of a transient failure (timeout, 429, 5xx).
        backoff_base_s (`float`, *optional*, defaults to 1): first backoff delay, doubled at each retry.
        backoff_max_s (`float`, *optional*, defaults to 60): ceiling of one backoff delay.
        max_retry_after_s (`float`, *optional*, defaults to 120): ceiling of a server's `Retry-After`.
        min_interval_s (`float`, *optional*, defaults to 0.1): minimum delay between two requests to one host.
        host_min_interval_s (`dict`, *optional*): per-host overrides of `min_interval_s`.
        max_concurrency (`int`, *optional*, defaults to 4): requests in flight per host.
        max_redirects (`int`, *optional*, defaults to 5): redirects followed per request.
        use_cache (`bool`, *optional*, defaults to `True`): keep successful API answers in an on-disk cache.
        cache_ttl_s (`float`, *optional*, defaults to 7 days): cached answers older than this are fetched again.
        cache_dir (`Path`, *optional*): folder of that cache; `PipelineConfig` defaults it to `work_dir/http_cache`.
    """

    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = 30.0
    deadline_s: float = 300.0
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 120.0
    min_interval_s: float = 0.1
    host_min_interval_s: dict[str, float] = field(default_factory=dict)
    max_concurrency: int = 4
    max_redirects: int = 5
    use_cache: bool = True
    cache_ttl_s: float = 7 * 24 * 3600.0
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if not self.user_agent.strip():
            raise ValueError("HttpSettings.user_agent is empty; pass a descriptive User-Agent with a contact.")
        if not self.deadline_s > 0:
            raise ValueError(f"HttpSettings.deadline_s must be > 0 seconds, got {self.deadline_s}.")
        if self.max_concurrency < 1:
            raise ValueError(f"HttpSettings.max_concurrency must be >= 1, got {self.max_concurrency}.")


@dataclass
class EndpointSettings:
    """Base URLs of the services the pipeline queries.

    Args:
        wikidata_api (`str`): the MediaWiki action API of Wikidata.
        commons_file_path (`str`): the `Special:FilePath/` prefix that redirects a Commons file name to its bytes.
        wikipedia_site (`str`, *optional*, defaults to `"enwiki"`): the site id of the Wikipedia links in sources.
        language (`str`, *optional*, defaults to `"en"`): language of labels, descriptions and search.
        maxlag (`int`, *optional*, defaults to 5): the API's ``maxlag`` (seconds of replication lag above which
            Wikidata asks bots to wait); `None` leaves it out.
    """

    wikidata_api: str = "https://www.wikidata.org/w/api.php"
    commons_file_path: str = "https://commons.wikimedia.org/wiki/Special:FilePath/"
    wikipedia_site: str = "enwiki"
    language: str = "en"
    maxlag: int | None = 5


@dataclass
class CandidateSettings:
    """Candidate generation.

    Args:
        search_limit (`int`, *optional*, defaults to 100): search hits read per mention (the paper's top 100).
        k (`int`, *optional*, defaults to 3): candidates kept per mention.
        spare (`int`, *optional*, defaults to 2): extra eligible candidates kept in case their images fail.
    """

    search_limit: int = 100
    k: int = 3
    spare: int = 2

    def __post_init__(self) -> None:
        if self.k < 1 or self.search_limit < self.k:
            raise ValueError(f"CandidateSettings needs 1 <= k <= search_limit, got k={self.k}, "
                             f"search_limit={self.search_limit}.")


@dataclass
class ImageSettings:
    """Image download and checks.

    Args:
        max_bytes (`int`, *optional*, defaults to 20 MB): larger files are refused without being read whole.
        max_pixels (`int`, *optional*, defaults to 50 M): larger images are refused (decompression bombs).
        thumb_width (`int`, *optional*, defaults to 1024): asks Commons for a raster rendering of this width
            (`?width=`), which also turns SVG files into PNG; `None` downloads the original file.
        max_images_per_entity (`int`, *optional*, defaults to 3): image-property values tried per entity.
        clip_model (`str`, *optional*): a CLIP-compatible model (name or path); when set, the image most similar
            to the entity text is kept instead of the first one that downloads.
    """

    max_bytes: int = 20_000_000
    max_pixels: int = 50_000_000
    thumb_width: int | None = 1024
    max_images_per_entity: int = 3
    clip_model: str | None = None


@dataclass
class DisambiguationSettings:
    """How the gold entity is chosen for topics whose sources carry no link (common, books).

    Args:
        llm_endpoint (`str`, *optional*): base URL of an OpenAI-compatible API (`.../v1`); unset means the
            description-similarity default.
        llm_model (`str`, *optional*, defaults to `"gpt-4o-mini"`): model name sent to the endpoint.
        llm_api_key_env (`str`, *optional*, defaults to `"OPENAI_API_KEY"`): environment variable holding the key.
    """

    llm_endpoint: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key_env: str = "OPENAI_API_KEY"


@dataclass
class StageSettings:
    """Resumability of every stage.

    Args:
        max_attempts (`int`, *optional*, defaults to 3): runs in which a failed item is tried before it is given up.
        workers (`int`, *optional*, defaults to 4): items processed concurrently.
    """

    max_attempts: int = 3
    workers: int = 4


@dataclass
class PipelineConfig:
    """Everything one pipeline run needs.

    Args:
        work_dir (`Path`): stage outputs, the HTTP cache and the reports.
        sources (`dict[str, Path]`): raw source file of each topic to build (a subset of `TOPICS`).
        release_dir (`Path`, *optional*): where release records and images go; defaults to `work_dir / "M3EL"`.
    """

    work_dir: Path
    sources: dict[str, Path] = field(default_factory=dict)
    release_dir: Path | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    endpoints: EndpointSettings = field(default_factory=EndpointSettings)
    candidates: CandidateSettings = field(default_factory=CandidateSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    disambiguation: DisambiguationSettings = field(default_factory=DisambiguationSettings)
    stage: StageSettings = field(default_factory=StageSettings)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)
        self.sources = {check_topic(topic): Path(path) for topic, path in self.sources.items()}
        self.release_dir = Path(self.release_dir) if self.release_dir else self.work_dir / "M3EL"
        if self.http.cache_dir is None:
            self.http.cache_dir = self.work_dir / "http_cache"

    @property
    def topics(self) -> list[str]:
        """The configured topics, in the order of `TOPICS`."""
        return [topic for topic in TOPICS if topic in self.sources]

    def stage_dir(self, stage: str) -> Path:
        """Folder of one stage's per-item state."""
        return self.work_dir / stage


_SECTIONS = {"http": HttpSettings, "endpoints": EndpointSettings, "candidates": CandidateSettings,
             "images": ImageSettings, "disambiguation": DisambiguationSettings, "stage": StageSettings}


def config_from_dict(data: dict, *, source: str = "settings") -> PipelineConfig:
    """A `PipelineConfig` from nested plain data (a parsed JSON settings file); ``ValueError`` names unknown keys."""
    known = {"work_dir", "sources", "release_dir", *_SECTIONS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}.")
    if "work_dir" not in data:
        raise ValueError(f"{source}: 'work_dir' is required.")
    kwargs = {k: v for k, v in data.items() if k not in _SECTIONS}
    for name, cls in _SECTIONS.items():
        section = dict(data.get(name, {}))
        try:
            if name == "http" and section.get("cache_dir"):
                section["cache_dir"] = Path(section["cache_dir"])
            kwargs[name] = cls(**section)
        except TypeError as err:
            raise ValueError(f"{source}: bad '{name}' section ({err}); see {cls.__name__} for its fields.") from err
    return PipelineConfig(**kwargs)
