"""PyTorch's side of `densetrain bench train --vs-torch` (started by bench/torch.ts).

Trains the same MLPs with the same recipe as the train suite (ReLU, SGD with Nesterov momentum
0.9, L2 on the weights only, cosine lr per epoch, standardised pixels, shuffled batches of the
whole training set, the loss and accuracy of every batch read back like densetrain's trainer)
in fp32 and in bf16 autocast (torch.autocast('cpu', torch.bfloat16): the linear layers' GEMMs
in bfloat16 through oneDNN, the loss in float32), at the given thread count, and prints one
JSON object: epoch wall times (the first `warmup` epochs not counted), the torch build and the
BLAS / oneDNN libraries this process actually loaded (from /proc/self/maps).

Differences kept on purpose: the images are converted to a float tensor once, before timing
(the usual PyTorch pattern; densetrain converts bytes per batch inside its epoch), and nothing is
written to disk (densetrain's epoch includes its checkpoint writes).

Exit code 3: no torch in this python (the bench prints a one-line hint).
"""
import gzip
import json
import os
import statistics
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.exit(3)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def find(directory, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{stem}(.gz) not found in {directory}")


def loaded_libraries():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path).lower()
                if any(k in base for k in ("blas", "mkl", "dnnl", "lapack", "gomp", "omp")):
                    libs.add(path)
    except OSError:
        pass
    return sorted(libs)


def main():
    spec = json.loads(sys.argv[1])
    threads = int(spec["threads"])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    images = read_idx(find(spec["dataDir"], "train-images-idx3-ubyte"))
    labels = read_idx(find(spec["dataDir"], "train-labels-idx1-ubyte")).long()
    n = images.shape[0]
    x = images.reshape(n, -1).float() / 255.0
    mean, std = x.mean(), x.std()
    x = (x - mean) / std
    recipe = spec["recipe"]
    rows = []
    for m in spec["models"]:
        for precision in spec["precisions"]:
            layers = m["layers"]
            mods = []
            for i in range(len(layers) - 1):
                mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
                if i < len(layers) - 2:
                    mods.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*mods)
            weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
            biases = [p for name, p in model.named_parameters() if name.endswith("bias")]
            opt = torch.optim.SGD(
                [{"params": weights, "weight_decay": recipe["l2"]}, {"params": biases, "weight_decay": 0.0}],
                lr=recipe["lr"],
                momentum=recipe["momentum"],
                nesterov=recipe["nesterov"],
            )
            epochs = spec["warmup"] + spec["epochs"]
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            bs = m["batchSize"]
            times = []
            loss_avg = None
            for _ in range(epochs):
                t0 = time.perf_counter()
                perm = torch.randperm(n)
                loss_sum = 0.0
                correct = 0
                for s in range(0, n, bs):
                    idx = perm[s : s + bs]
                    xb = x[idx]
                    yb = labels[idx]
                    if precision == "bf16":
                        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                            logits = model(xb)
                        logits = logits.float()
                    else:
                        logits = model(xb)
                    loss = F.cross_entropy(logits, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    loss_sum += loss.item() * idx.shape[0]
                    correct += int((logits.argmax(1) == yb).sum().item())
                sched.step()
                times.append(time.perf_counter() - t0)
                loss_avg = loss_sum / n
            timed = times[spec["warmup"] :]
            rows.append(
                {
                    "model": m["name"],
                    "precision": precision,
                    "batchSize": bs,
                    "threads": threads,
                    "epochSeconds": timed,
                    "secondsPerEpoch": statistics.median(timed),
                    "bestEpochSeconds": min(timed),
                    "warmupSeconds": times[0],
                    "finalTrainLoss": loss_avg,
                    "finalTrainAccuracy": correct / n,
                }
            )
            print(f"torch {m['name']} {precision}: {statistics.median(timed):.3f} s/epoch", file=sys.stderr, flush=True)
    config = torch.__config__.show()
    blas_info = next((part.split("=", 1)[1] for part in config.replace("\n", ",").split(",") if part.strip().startswith("BLAS_INFO=")), None)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "python": sys.executable,
                "pythonVersion": sys.version.split()[0],
                "threads": torch.get_num_threads(),
                "images": n,
                "blasInfo": blas_info,
                "mkldnn": bool(torch.backends.mkldnn.is_available()),
                "libraries": loaded_libraries(),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
