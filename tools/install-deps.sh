#!/bin/sh
# Installs what mmf needs to build and test on Debian/Ubuntu. The CUDA
# toolkit (nvcc) is optional and not installed here: without it configure
# builds the CPU backend only.
set -e
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
	build-essential autoconf automake libtool pkg-config python3 \
	libjansson-dev libopenblas-dev \
	libevent-dev libprotobuf-c-dev protobuf-c-compiler libsystemd-dev \
	libjpeg-dev libpng-dev zlib1g-dev >/dev/null
