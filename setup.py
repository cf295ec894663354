"""Installation of the ``foundation`` package: Isaac Lab-style MuJoCo environments and rsl-rl teacher-student training.

Exact pins for the physics and RL libraries (their APIs change between releases); ``torch==2.13.0`` pulls the CPU
build on machines without CUDA wheels in their index. ``pip install -e .[dev]`` adds the test tools, ``.[mutation]``
the mutation tester.
"""

from setuptools import find_packages, setup

setup(
    name="foundation",
    version="0.1.0",
    description="Isaac Lab-style MuJoCo environments and two-phase DAgger teacher-student training with rsl-rl",
    python_requires=">=3.10",
    packages=find_packages(include=["foundation", "foundation.*"]),
    package_data={"foundation": ["assets/**/*"]},
    include_package_data=True,
    install_requires=[
        "mujoco==4.0.0",
        # MuJoCo's OpenUSD support, i.e. the `usd` extra of mujoco 4.0.0: the USD decoder of MjSpec.from_file
        # (env.robot.spawn.usd_path) and pxr for the mujoco.usd rollout exporter (play.py --usd) and the USD tests.
        "mujoco-usd==4.0.0",
        "usd-core==25.11",  # the version mujoco-usd 4.0.0 is built against
        "pillow>=10",  # mujoco.usd writes the model's textures with it
        "mujoco-warp==4.0.0",
        "warp-lang==1.19.0",
        "rsl-rl-lib==5.5.1",
        "torch==2.13.0",
        "tensordict==0.15.3",
        "numpy>=1.26",
        "gymnasium>=1.0,<2",
        "hydra-core==1.3.8",
        "omegaconf==2.3.1",
        "pyyaml>=6",
        "tensorboard>=2.16",
        "wandb>=0.19",
        "imageio>=2.34",
        "imageio-ffmpeg>=0.5",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "onnx>=1.17",
        "onnxscript>=0.2",
        "onnxruntime>=1.20",
    ],
    # mutation: scripts/mutation_test.py (not part of CI; see its docstring for the choice of tool)
    extras_require={"dev": ["pytest>=8"], "mutation": ["mutmut==3.8.1"]},
)
