# fedray on Ray's CPU image, at the Ray version pyproject.toml pins (tests/unit/test_deploy_files.py
# keeps the two in step). Every node of a cluster runs this image: head, workers, RayJob submitter.
#
#   docker build -t $REGISTRY/fedray:0.1.0 .
#   docker push $REGISTRY/fedray:0.1.0
#
# $REGISTRY is yours (e.g. ghcr.io/your-org); cluster/*.yaml name the image
# REGISTRY/fedray:0.1.0, to be replaced with the tag pushed. docs/deploy.md has the whole path.
FROM rayproject/ray:2.60.0-py311-cpu

# torch from PyTorch's CPU index first (the README's CPU install), so `pip install .` finds the pin
# satisfied and pulls no CUDA wheels.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /home/ray/fedray
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users fedray ./fedray
# A regular (non-editable) install: fedray, its conf/ and the `fedray` command land in the image's
# Python; the source copy can go. The check fails the build if conf/ did not ship.
RUN pip install --no-cache-dir . \
    && cd / && rm -rf /home/ray/fedray \
    && fedray config show attack=sign_flip strategy=krum > /dev/null
WORKDIR /home/ray
