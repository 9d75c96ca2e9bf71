"""``featurekit layers MODEL``: print a model's layer table."""

from __future__ import annotations

from featurekit.cli.common import EXAMPLES_FORMATTER
from featurekit.specs import POOLS

EXAMPLES = """examples:
  featurekit layers vgg16                 # Keras-indexed table: 8-17 = block3_conv2..block5_conv3
  featurekit layers inception_v3          # mixed0..mixed10 at 299 px
  featurekit layers resnet50 --size 128 --pool spp
  featurekit layers vit_b_16              # torchvision ViT: blocks.0..11, norm (tokens)
  featurekit layers timm-convnext_atto --size 64
  featurekit layers timm-vit_small_patch16_224.augreg_in21k --pool cls
  featurekit layers --list                # every model featurekit can load
"""


def add_parser(sub) -> None:
    p = sub.add_parser("layers", help="print a model's layer table (index, name, module, shape, dim)",
                       description=__doc__, epilog=EXAMPLES, formatter_class=EXAMPLES_FORMATTER)
    p.add_argument("model", nargs="?", help="model name, e.g. vgg16, resnet50, inception_v3, mobilenet_v2, "
                                            "timm-convnext_atto")
    p.add_argument("--size", type=int, default=None, help="input size in pixels (default: the model's)")
    p.add_argument("--pool", default="gap", choices=POOLS, help="pooling used for the dim column (default: gap)")
    p.add_argument("--list", action="store_true", help="list the models instead")
    p.set_defaults(run=run)


def run(args) -> int:
    from featurekit.models import SPECS, layer_table, list_models

    if args.list or not args.model:
        print("models with canonical layer names: " + ", ".join(SPECS))
        print("any torchvision classification model (generic layer names): " + ", ".join(list_models()))
        print("any timm model as timm-NAME[.TAG] (layers timm declares), e.g. timm-convnext_atto, "
              "timm-vit_small_patch16_224.augreg_in21k")
        return 0 if args.list else 2
    table = layer_table(args.model, args.size)
    print(f"{table.model} at {table.input_size}x{table.input_size}")
    from featurekit.extraction.pooling import layer_dim

    print(table.format(lambda layer: layer_dim(layer, args.pool), f"dim ({args.pool})"))
    return 0
