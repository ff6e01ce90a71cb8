"""Single-line mistakes in the methods, each run against the tests that must catch it (issue "methods as published,
tests that bite"): a copy of the repository per mutant, the mutated line, the named tests. Prints CAUGHT or
SURVIVED per mutant; exit 1 if any survived. Usage, from the repository root::

    python tests/mutation/run_mutants.py            # every mutant (a few minutes)
    python tests/mutation/run_mutants.py 0 3        # mutants 0 and 3
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: (what is wrong, file, the right line, the mutated line, the tests that must catch it)
MUTANTS = [
    (
        'FixMatch: weak and strong views swapped',
        'esclib/train/fixmatch.py',
        'parts, x_l, self.weak.on_logmel(z_w), self.strong.on_logmel(z_s))',
        'parts, x_l, self.strong.on_logmel(z_s), self.weak.on_logmel(z_w))',
        'tests/test_fixmatch.py',
    ),
    (
        'SSL: teacher replaced by the student',
        'esclib/models/ssl.py',
        'return _float(self.teacher_head(self.teacher_backbone(x)))',
        'return _float(self.head(self.backbone(x))).detach()',
        'tests/test_ssl.py',
    ),
    (
        'SSL: EMA teacher never updated',
        'esclib/models/ssl.py',
        'update_momentum(self.backbone, self.teacher_backbone, m)',
        'update_momentum(self.backbone, self.teacher_backbone, 1.0)',
        'tests/test_ssl.py',
    ),
    (
        'NPID: memory bank ignores the new features',
        'esclib/losses/npid.py',
        'mixed = self.memory[index] * self.momentum + features.detach().to(self.memory.dtype) * (1 - self.momentum)',
        'mixed = self.memory[index] * 1.0 + features.detach().to(self.memory.dtype) * 0.0',
        'tests/test_npid.py',
    ),
    (
        'CAE: pre-trained encoder never loaded into the classifier',
        'esclib/experiments/cae.py',
        'model.load_encoder(self.pretraining.pretrained(arm, recipe.pretraining)[0])',
        'self.pretraining.pretrained(arm, recipe.pretraining)[0]',
        'tests/test_cae.py',
    ),
    (
        'Few-shot subset drawn from every fold',
        'esclib/experiments/pann_transfer.py',
        'labelled = labelled_subset(official.train, per_class=per_class, seed=self.seed)[0]',
        'labelled = labelled_subset(self.clips, per_class=per_class, seed=self.seed)[0]',
        'tests/test_transfer.py',
    ),
    (
        'FixMatch: the unlabelled term dropped',
        'esclib/losses/fixmatch.py',
        'return FixMatchLoss(supervised + lambda_u * unsupervised, supervised, unsupervised, pseudo)',
        'return FixMatchLoss(supervised, supervised, unsupervised, pseudo)',
        'tests/test_fixmatch.py',
    ),
    (
        'kNN: the temperature ignored in the vote',
        'esclib/metrics.py',
        'weights = np.ones_like(near_sim) if temperature is None else np.exp(near_sim / temperature)',
        'weights = np.ones_like(near_sim) if temperature is None else np.exp(near_sim)',
        'tests/test_metrics.py tests/test_npid.py',
    ),
    (
        "Freeze: the frozen base's parameters still train",
        'esclib/models/transfer.py',
        '            parameter.requires_grad_(False)',
        '            parameter.requires_grad_(True)',
        'tests/test_transfer.py',
    ),
    (
        'DINO: teacher centering dropped',
        'esclib/models/ssl.py',
        'teacher = [F.softmax((self.teacher(v) - self.criterion.center[0]) / temperature, dim=-1)',
        'teacher = [F.softmax((self.teacher(v)) / temperature, dim=-1)',
        'tests/test_ssl.py',
    ),
    (
        'DINO: evaluated (probe, kNN, Grad-CAM) on the student instead of the teacher',
        'esclib/models/ssl.py',
        '        return self.teacher_backbone\n',
        '        return self.backbone\n',
        'tests/test_ssl.py',
    ),
    (
        'Linear probe: the kept classifier forgets the standardisation',
        'esclib/train/probe.py',
        'bias = layer.bias.detach().cpu().double() - weight @ torch.as_tensor(scaler.mean_, dtype=torch.float64)',
        'bias = layer.bias.detach().cpu().double()',
        'tests/test_probe.py',
    ),
    (
        'FixMatch: the views keep the study\'s frame widths on short crops (views_to_crop ignored)',
        'esclib/experiments/fixmatch.py',
        'weak, strong = policy_views(recipe.policies, self.view_time_scale(recipe))\n        alpha, inputs',
        'weak, strong = policy_views(recipe.policies)\n        alpha, inputs',
        'tests/test_fixmatch.py',
    ),
    (
        'SpecAugment scaled to a crop: the time widths left as they were',
        'esclib/augment/policies.py',
        'spectrogram = [SpecAugment(max(2, round(op.time_drop_width * factor)), op.time_stripes_num, op.freq_drop_width,',
        'spectrogram = [SpecAugment(op.time_drop_width, op.time_stripes_num, op.freq_drop_width,',
        'tests/test_fixmatch.py',
    ),
    (
        'FixMatch: validation and test read the training crop instead of whole clips',
        'esclib/experiments/fixmatch.py',
        'train=False, batch_size=self.eval_batch_size)',
        'train=False, batch_size=self.eval_batch_size,\n                            crop_seconds=recipe.crop_seconds)',
        'tests/test_fixmatch.py',
    ),
    (
        'FixMatch: the study\'s widths kept in frames of any hop (the mini\'s 20-ms frames mask twice the time)',
        'esclib/experiments/fixmatch.py',
        'scale = STUDY_FRAME_SECONDS * self.sample_rate / self.pretrained.frontend.hop_size',
        'scale = 1.0',
        'tests/test_fixmatch.py',
    ),
    (
        'Mini pre-training: the cache key forgets the frontend (a checkpoint of another hop read stale)',
        'esclib/train/pann_pretrain.py',
        '"frontend": asdict(ARCHITECTURES[config.arch].default_frontend)},',
        '},',
        'tests/test_pann_pretrain.py',
    ),
]


def main(only: list[str]) -> int:
    survived = 0
    for i, (name, path, old, new, tests) in enumerate(MUTANTS):
        if only and str(i) not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            survived += not run_mutant(i, name, Path(tmp) / "repo", path, old, new, tests)
    return 1 if survived else 0


def run_mutant(i: int, name: str, work: Path, path: str, old: str, new: str, tests: str) -> bool:
    """Whether the tests caught mutant ``i``."""
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".venv", ".git", "_build", "chapters", "__pycache__",
                                                              "results", ".esclib-cache"))
    source = work / path
    text = source.read_text()
    if text.count(old) != 1:
        raise ValueError(f"mutant {i} ({name}): its line occurs {text.count(old)} times in {path}, expected once")
    source.write_text(text.replace(old, new))
    env = dict(os.environ, PYTHONPATH=str(work), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests.split()],
                          cwd=work, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode not in (0, 1):  # 2-5: interrupted, internal error, usage error, no tests: not a verdict
        raise RuntimeError(f"mutant {i} ({name}): pytest exited {done.returncode}: {(lines or [done.stderr])[-1]}")
    failed = [line for line in lines if line.startswith("FAILED")]
    print(f"[{i}] {name}: {'CAUGHT by ' + failed[0][7:] if failed else 'SURVIVED'}", flush=True)
    return bool(failed)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
