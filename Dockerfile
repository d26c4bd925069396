# Container images for bftws (targets `node` and `operator`) are not defined yet. Building this
# file fails on purpose rather than produce an image that does not work.
FROM scratch AS node
COPY NOT-YET-AVAILABLE /
