"""The tables of docs/architecture.md, typed in again by hand for the tests (independent of the
model code), and the parameter counts they imply: conv without bias + BatchNorm (2 parameters
per channel), linear with bias."""

# Inception-v2 stem: (name, out C, out H) at 299.
V2_STEM = [
    ("conv1", 32, 149),
    ("conv2", 32, 147),
    ("conv3", 64, 147),
    ("pool1", 64, 73),
    ("conv4", 80, 71),
    ("conv5", 192, 35),
    ("conv6", 288, 35),
]
# name: (stride, out C, grid at 299, #1x1, #red, #n, #dbl red, #dbl, pool, proj)
V2_MODULES = {
    "3a": (1, 288, 35, 64, 64, 64, 64, 96, "avg", 64),
    "3b": (1, 288, 35, 64, 64, 96, 64, 96, "avg", 32),
    "3c": (2, 768, 17, 0, 128, 320, 64, 160, "max", 0),
    "5a": (1, 768, 17, 192, 96, 160, 96, 160, "avg", 256),
    "5b": (1, 768, 17, 192, 96, 160, 96, 160, "avg", 256),
    "5c": (1, 768, 17, 192, 96, 160, 96, 160, "avg", 256),
    "5d": (1, 768, 17, 192, 96, 160, 96, 160, "avg", 256),
    "5e": (2, 1280, 8, 0, 128, 192, 128, 320, "max", 0),
    "2a": (1, 1280, 8, 256, 128, 160, 128, 240, "avg", 224),
    "2b": (1, 2048, 8, 256, 96, 96, 96, 160, "max", 0),
}
# GoogLeNet-BN stem at 224 and modules: name: (stride, in C, out C, grid of the output, ...).
BN_STEM = [("conv1", 64, 112), ("pool1", 64, 56), ("conv2", 64, 56), ("conv3", 192, 56), ("pool2", 192, 28)]
BN_MODULES = {
    "3a": (1, 192, 256, 28, 64, 64, 64, 64, 96, "avg", 32),
    "3b": (1, 256, 320, 28, 64, 64, 96, 64, 96, "avg", 64),
    "3c": (2, 320, 576, 14, 0, 128, 160, 64, 96, "max", 0),
    "4a": (1, 576, 576, 14, 224, 64, 96, 96, 128, "avg", 128),
    "4b": (1, 576, 576, 14, 192, 96, 128, 96, 128, "avg", 128),
    "4c": (1, 576, 608, 14, 160, 128, 160, 128, 160, "avg", 128),
    "4d": (1, 608, 608, 14, 96, 128, 192, 160, 192, "avg", 128),
    "4e": (2, 608, 1056, 7, 0, 128, 192, 192, 256, "max", 0),
    "5a": (1, 1056, 1024, 7, 352, 192, 320, 160, 224, "avg", 128),
    "5b": (1, 1024, 1024, 7, 352, 192, 320, 192, 224, "max", 128),
}


def conv(cin, cout, kh, kw=None):
    kw = kh if kw is None else kw
    return kh * kw * cin * cout + 2 * cout


def linear(cin, cout):
    return cin * cout + cout


def v2_module_params(name, cin):
    stride, out, _, n1, red, n, dred, dbl, _, proj = V2_MODULES[name]
    group = name[0]
    p = conv(cin, n1, 1) if n1 else 0
    p += conv(cin, proj, 1) if proj else 0
    p += conv(cin, red, 1) + conv(cin, dred, 1)
    if group == "3":  # 1x1 -> 3x3 | 1x1 -> 3x3 -> 3x3
        p += conv(red, n, 3) + conv(dred, dbl, 3) + conv(dbl, dbl, 3)
    elif group == "5":  # 1x1 -> 1x7 -> 7x1 (-> 3x3/2) | 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 (-> 3x3/2)
        p += conv(red, n, 1, 7) + conv(n, n, 7, 1)
        p += conv(dred, dbl, 7, 1) + 3 * conv(dbl, dbl, 1, 7)
        if stride == 2:
            p += conv(n, n, 3) + conv(dbl, dbl, 3)
    else:  # 1x1 -> {1x3 | 3x1} | 1x1 -> 3x3 -> {1x3 | 3x1}
        p += 2 * conv(red, n, 1, 3) + conv(dred, dbl, 3) + 2 * conv(dbl, dbl, 1, 3)
    return p


def v2_params(num_classes, aux=True, bn_aux=False):
    p = conv(3, 32, 3) + conv(32, 32, 3) + conv(32, 64, 3) + conv(64, 80, 3) + conv(80, 192, 3)
    p += conv(192, 288, 3)
    cin = 288
    for name, row in V2_MODULES.items():
        p += v2_module_params(name, cin)
        cin = row[1]
    p += linear(2048, num_classes)
    if aux:
        p += conv(768, 128, 1) + linear(3200, 1024) + linear(1024, num_classes)
        p += 2 * 1024 if bn_aux else 0
    return p


def bn_module_params(name):
    stride, cin, out, _, n1, red, n, dred, dbl, _, proj = BN_MODULES[name]
    p = conv(cin, n1, 1) if n1 else 0
    p += conv(cin, proj, 1) if proj else 0
    p += conv(cin, red, 1) + conv(red, n, 3) + conv(cin, dred, 1) + conv(dred, dbl, 3)
    return p + conv(dbl, dbl, 3)


def googlenet_bn_params(num_classes, aux=True):
    p = conv(3, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    p += sum(bn_module_params(name) for name in BN_MODULES)
    p += linear(1024, num_classes)
    if aux:
        for cin in (576, 608):  # after 4a and 4d
            p += conv(cin, 128, 1) + linear(2048, 1024) + linear(1024, num_classes)
    return p


# The released Inception-v3 (inception_v3_tv) at 299: (name, out C, out H), as torchvision's
# shape comments.
TV_STAGES = [
    ("Conv2d_1a_3x3", 32, 149),
    ("Conv2d_2a_3x3", 32, 147),
    ("Conv2d_2b_3x3", 64, 147),
    ("maxpool1", 64, 73),
    ("Conv2d_3b_1x1", 80, 73),
    ("Conv2d_4a_3x3", 192, 71),
    ("maxpool2", 192, 35),
    ("Mixed_5b", 256, 35),
    ("Mixed_5c", 288, 35),
    ("Mixed_5d", 288, 35),
    ("Mixed_6a", 768, 17),
    ("Mixed_6b", 768, 17),
    ("Mixed_6c", 768, 17),
    ("Mixed_6d", 768, 17),
    ("Mixed_6e", 768, 17),
    ("Mixed_7a", 1280, 8),
    ("Mixed_7b", 2048, 8),
    ("Mixed_7c", 2048, 8),
]
TV_PARAMS_1000 = 27_161_264  # torchvision's inception_v3 with its auxiliary head
TV_AUX_PARAMS_1000 = conv(768, 128, 1) + conv(128, 768, 5) + linear(768, 1000)
