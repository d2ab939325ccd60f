from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    ACCEPTED: _ClassVar[Decision]
    DOWNLINKED: _ClassVar[Decision]
    REUSED: _ClassVar[Decision]
    DISCARDED: _ClassVar[Decision]
    UNCOUNTED: _ClassVar[Decision]

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    JPEG: _ClassVar[Codec]
    PNG: _ClassVar[Codec]
DECISION_UNSPECIFIED: Decision
ACCEPTED: Decision
DOWNLINKED: Decision
REUSED: Decision
DISCARDED: Decision
UNCOUNTED: Decision
CODEC_UNSPECIFIED: Codec
JPEG: Codec
PNG: Codec

class Footprint(_message.Message):
    __slots__ = ("geotransform", "crs")
    GEOTRANSFORM_FIELD_NUMBER: _ClassVar[int]
    CRS_FIELD_NUMBER: _ClassVar[int]
    geotransform: _containers.RepeatedScalarFieldContainer[float]
    crs: str
    def __init__(self, geotransform: _Optional[_Iterable[float]] = ..., crs: _Optional[str] = ...) -> None: ...

class TileGrid(_message.Message):
    __slots__ = ("width", "height", "tile_size", "rows", "cols")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TILE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    tile_size: int
    rows: int
    cols: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., tile_size: _Optional[int] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ...) -> None: ...

class SceneHeader(_message.Message):
    __slots__ = ("scene_id", "grid", "gsd_m", "footprint", "capture_time", "onboard_model", "ground_model", "input_size", "policy", "classes", "gsd_estimated", "bundle_version")
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    GSD_M_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    ONBOARD_MODEL_FIELD_NUMBER: _ClassVar[int]
    GROUND_MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    GSD_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    grid: TileGrid
    gsd_m: float
    footprint: Footprint
    capture_time: str
    onboard_model: str
    ground_model: str
    input_size: int
    policy: str
    classes: _containers.RepeatedScalarFieldContainer[str]
    gsd_estimated: bool
    bundle_version: int
    def __init__(self, scene_id: _Optional[str] = ..., grid: _Optional[_Union[TileGrid, _Mapping]] = ..., gsd_m: _Optional[float] = ..., footprint: _Optional[_Union[Footprint, _Mapping]] = ..., capture_time: _Optional[str] = ..., onboard_model: _Optional[str] = ..., ground_model: _Optional[str] = ..., input_size: _Optional[int] = ..., policy: _Optional[str] = ..., classes: _Optional[_Iterable[str]] = ..., gsd_estimated: _Optional[bool] = ..., bundle_version: _Optional[int] = ...) -> None: ...

class TileDecision(_message.Message):
    __slots__ = ("index", "decision", "onboard_count", "confidence", "reused_from", "quality", "context", "class_counts", "exploration")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ONBOARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    REUSED_FROM_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CLASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    index: int
    decision: Decision
    onboard_count: float
    confidence: float
    reused_from: str
    quality: int
    context: int
    class_counts: _containers.RepeatedScalarFieldContainer[float]
    exploration: bool
    def __init__(self, index: _Optional[int] = ..., decision: _Optional[_Union[Decision, str]] = ..., onboard_count: _Optional[float] = ..., confidence: _Optional[float] = ..., reused_from: _Optional[str] = ..., quality: _Optional[int] = ..., context: _Optional[int] = ..., class_counts: _Optional[_Iterable[float]] = ..., exploration: _Optional[bool] = ...) -> None: ...

class SceneSummary(_message.Message):
    __slots__ = ("scene_id", "tiles", "energy_j", "downlink_bytes", "onboard_inferences", "quicklook", "quicklook_width", "quicklook_height")
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    TILES_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    DOWNLINK_BYTES_FIELD_NUMBER: _ClassVar[int]
    ONBOARD_INFERENCES_FIELD_NUMBER: _ClassVar[int]
    QUICKLOOK_FIELD_NUMBER: _ClassVar[int]
    QUICKLOOK_WIDTH_FIELD_NUMBER: _ClassVar[int]
    QUICKLOOK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    tiles: _containers.RepeatedCompositeFieldContainer[TileDecision]
    energy_j: float
    downlink_bytes: int
    onboard_inferences: int
    quicklook: bytes
    quicklook_width: int
    quicklook_height: int
    def __init__(self, scene_id: _Optional[str] = ..., tiles: _Optional[_Iterable[_Union[TileDecision, _Mapping]]] = ..., energy_j: _Optional[float] = ..., downlink_bytes: _Optional[int] = ..., onboard_inferences: _Optional[int] = ..., quicklook: _Optional[bytes] = ..., quicklook_width: _Optional[int] = ..., quicklook_height: _Optional[int] = ...) -> None: ...

class TileChunk(_message.Message):
    __slots__ = ("scene_id", "tile_index", "row", "col", "codec", "quality", "sha256", "total_size", "offset", "data", "sent_gsd_m", "resized", "decision", "onboard_count", "confidence", "exploration")
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    TILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    COL_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SENT_GSD_M_FIELD_NUMBER: _ClassVar[int]
    RESIZED_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ONBOARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    EXPLORATION_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    tile_index: int
    row: int
    col: int
    codec: Codec
    quality: int
    sha256: bytes
    total_size: int
    offset: int
    data: bytes
    sent_gsd_m: float
    resized: bool
    decision: Decision
    onboard_count: float
    confidence: float
    exploration: bool
    def __init__(self, scene_id: _Optional[str] = ..., tile_index: _Optional[int] = ..., row: _Optional[int] = ..., col: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., quality: _Optional[int] = ..., sha256: _Optional[bytes] = ..., total_size: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., sent_gsd_m: _Optional[float] = ..., resized: _Optional[bool] = ..., decision: _Optional[_Union[Decision, str]] = ..., onboard_count: _Optional[float] = ..., confidence: _Optional[float] = ..., exploration: _Optional[bool] = ...) -> None: ...

class DownlinkMessage(_message.Message):
    __slots__ = ("seq", "header", "summary", "chunk")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    seq: int
    header: SceneHeader
    summary: SceneSummary
    chunk: TileChunk
    def __init__(self, seq: _Optional[int] = ..., header: _Optional[_Union[SceneHeader, _Mapping]] = ..., summary: _Optional[_Union[SceneSummary, _Mapping]] = ..., chunk: _Optional[_Union[TileChunk, _Mapping]] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("seq", "scene_id", "status", "header", "summary", "tile_index", "error")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Ack.Status]
        COMMITTED: _ClassVar[Ack.Status]
        PARTIAL: _ClassVar[Ack.Status]
        REJECTED: _ClassVar[Ack.Status]
    STATUS_UNSPECIFIED: Ack.Status
    COMMITTED: Ack.Status
    PARTIAL: Ack.Status
    REJECTED: Ack.Status
    SEQ_FIELD_NUMBER: _ClassVar[int]
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TILE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    seq: int
    scene_id: str
    status: Ack.Status
    header: bool
    summary: bool
    tile_index: int
    error: str
    def __init__(self, seq: _Optional[int] = ..., scene_id: _Optional[str] = ..., status: _Optional[_Union[Ack.Status, str]] = ..., header: _Optional[bool] = ..., summary: _Optional[bool] = ..., tile_index: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class CommittedRequest(_message.Message):
    __slots__ = ("scene_id",)
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    def __init__(self, scene_id: _Optional[str] = ...) -> None: ...

class CommittedReply(_message.Message):
    __slots__ = ("scene_id", "header", "summary", "tiles")
    SCENE_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    TILES_FIELD_NUMBER: _ClassVar[int]
    scene_id: str
    header: bool
    summary: bool
    tiles: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, scene_id: _Optional[str] = ..., header: _Optional[bool] = ..., summary: _Optional[bool] = ..., tiles: _Optional[_Iterable[int]] = ...) -> None: ...

class BundleFile(_message.Message):
    __slots__ = ("name", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class UpdateBundle(_message.Message):
    __slots__ = ("manifest", "signature", "files")
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    manifest: bytes
    signature: bytes
    files: _containers.RepeatedCompositeFieldContainer[BundleFile]
    def __init__(self, manifest: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., files: _Optional[_Iterable[_Union[BundleFile, _Mapping]]] = ...) -> None: ...

class OfferRequest(_message.Message):
    __slots__ = ("in_force", "refused", "refused_reason")
    IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REASON_FIELD_NUMBER: _ClassVar[int]
    in_force: int
    refused: int
    refused_reason: str
    def __init__(self, in_force: _Optional[int] = ..., refused: _Optional[int] = ..., refused_reason: _Optional[str] = ...) -> None: ...

class BundleOffer(_message.Message):
    __slots__ = ("version", "size", "sha256")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    version: int
    size: int
    sha256: bytes
    def __init__(self, version: _Optional[int] = ..., size: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class FetchRequest(_message.Message):
    __slots__ = ("version", "offset", "max_bytes")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    version: int
    offset: int
    max_bytes: int
    def __init__(self, version: _Optional[int] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class BundleChunk(_message.Message):
    __slots__ = ("version", "total_size", "sha256", "offset", "data")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    version: int
    total_size: int
    sha256: bytes
    offset: int
    data: bytes
    def __init__(self, version: _Optional[int] = ..., total_size: _Optional[int] = ..., sha256: _Optional[bytes] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
