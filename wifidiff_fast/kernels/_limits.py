"""Launch limits the Triton interpreter never enforces: checked before a launch, so a too-large
input fails with a clear error on a GPU too instead of an "invalid configuration" launch error
or an int32 offset that wraps around."""

from __future__ import annotations

GRID_YZ_MAX = 65535  # CUDA's limit on the 2nd and 3rd grid dimensions
INT32_EXTENT_MAX = 2**31 - 1  # the kernels' in-map offsets are int32 (the batch offset is int64)


def check_launch(op: str, grid_yz: dict[str, int] | None = None, int32_extent: int = 0) -> None:
    for what, value in (grid_yz or {}).items():
        if value > GRID_YZ_MAX:
            raise ValueError(
                f"{op} (triton): {what} = {value} exceeds the GPU grid limit of "
                f"{GRID_YZ_MAX}; split the batch or use the cuda or reference backend"
            )
    if int32_extent > INT32_EXTENT_MAX:
        raise ValueError(
            f"{op} (triton): {int32_extent} elements per map exceed int32 offsets; "
            "use the cuda or reference backend"
        )
