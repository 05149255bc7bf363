"""Object detection heads."""

from __future__ import annotations

from codegen.ir import Call, ModuleNode
from codegen.layers import Layer, LayerError, register
from codegen.layers.conv import expect_images


@register(
    "nnet.cnn.layer.YOLOv2TransformLayer",
    torch="YOLOv2Transform helper (sigmoid/exp/softmax per anchor)",
)
def yolov2_transform(layer: Layer) -> ModuleNode:
    t = expect_images(layer, 2)
    anchors = int(layer.number("NumAnchorBoxes"))
    if anchors < 1 or t.channels % anchors or t.channels // anchors < 5:
        raise LayerError(
            f"{t.channels} channels do not hold [iou x y w h classes...] for {anchors} anchors."
        )
    return ModuleNode(
        **layer.common(),
        module=Call("YOLOv2Transform", (anchors,)),
        helpers=("yolov2_transform",),
        out_types=(t,),
    )
