#!/usr/bin/env python3
"""A reference RTSP server on GStreamer's gst-rtsp-server, for camgate's tests and benchmarks.

Serves one mount point on 127.0.0.1 only, either a media file (looping, one shared pipeline
for every client) or a gst-launch pipeline, with optional Basic+Digest authentication.
Prints one JSON line {"url": "rtsp://127.0.0.1:PORT/name"} on stdout once it is listening,
then runs until killed.

Needs python3-gi, gir1.2-gst-rtsp-server-1.0 and gstreamer1.0-plugins-{base,good,bad}.

Examples:
    gst_rtsp_server.py --port 0 --file cam.mkv --path /cam
    gst_rtsp_server.py --port 8554 --user admin --password secret \\
        --launch "( videotestsrc is-live=true ! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
"""

import argparse
import ctypes
import json
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstPbutils", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstPbutils, GstRtsp, GstRtspServer  # noqa: E402

# Parser + payloader for each elementary stream type we know how to send, by caps name.
# The payloader name (pay0, pay1, ...) and payload type are filled in per stream.
# RTP/JPEG (RFC 2435) has no room for Huffman tables: JPEGs must use the standard ones
# (ffmpeg: -c:v mjpeg -huffman default), or receivers decode garbage.
PAYLOADERS = {
    "video/x-h264": "h264parse ! rtph264pay config-interval=-1 pt={pt} name=pay{n}",
    "video/x-h265": "h265parse ! rtph265pay config-interval=-1 pt={pt} name=pay{n}",
    "image/jpeg": "jpegparse ! rtpjpegpay pt=26 name=pay{n}",
    "audio/x-alaw": "rtppcmapay pt=8 name=pay{n}",
    "audio/x-mulaw": "rtppcmupay pt=0 name=pay{n}",
    "audio/mpeg": "aacparse ! rtpmp4gpay pt={pt} name=pay{n}",
}

DEMUXERS = {
    ".mkv": "matroskademux",
    ".webm": "matroskademux",
    ".mka": "matroskademux",
    ".mp4": "qtdemux",
    ".m4v": "qtdemux",
    ".mov": "qtdemux",
}


def log(msg):
    print(f"gst_rtsp_server: {msg}", file=sys.stderr, flush=True)


def enable_basic_and_digest(auth):
    """Offers both Basic and Digest challenges.

    gst_rtsp_auth_set_supported_methods takes a bit set, but the introspection data types its
    argument as a plain enum that PyGObject will not let us OR, so call the C function directly.
    """
    methods = int(GstRtsp.RTSPAuthMethod.BASIC) | int(GstRtsp.RTSPAuthMethod.DIGEST)
    try:
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        lib = ctypes.CDLL("libgstrtspserver-1.0.so.0")
        lib.gst_rtsp_auth_set_supported_methods.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.gst_rtsp_auth_set_supported_methods(get_pointer(auth.__gpointer__, None), methods)
    except (OSError, AttributeError, ValueError) as e:
        log(f"cannot enable Digest auth ({e}); offering Basic only")
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)


def file_launch_line(path):
    """Builds a launch line that demuxes `path` and payloads its first video and audio streams.

    Returns the launch line and the file's duration in nanoseconds (None if unknown).
    """
    ext = os.path.splitext(path)[1].lower()
    demux = DEMUXERS.get(ext)
    if demux is None:
        raise SystemExit(f"unsupported container {ext!r}; use .mkv/.webm/.mp4/.mov or --launch")
    uri = Gst.filename_to_uri(os.path.abspath(path))
    info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(uri)
    branches = []
    pads = {"video": 0, "audio": 0}
    served = set()
    for stream in info.get_stream_list():
        if isinstance(stream, GstPbutils.DiscovererVideoInfo):
            kind = "video"
        elif isinstance(stream, GstPbutils.DiscovererAudioInfo):
            kind = "audio"
        else:
            continue
        pad = f"{kind}_{pads[kind]}"
        pads[kind] += 1
        caps = stream.get_caps()
        name = caps.get_structure(0).get_name() if caps and caps.get_size() > 0 else "?"
        if kind in served:
            log(f"skipping extra {kind} stream {pad} ({name})")
            continue
        template = PAYLOADERS.get(name)
        if template is None:
            log(f"skipping {pad}: no RTP payloader for {name}")
            continue
        n = len(branches)
        pay = template.format(n=n, pt=96 + n)
        branches.append(f"d.{pad} ! queue ! {pay}")
        served.add(kind)
    if not branches:
        raise SystemExit(f"{path}: no stream that can be sent over RTP")
    location = path.replace("\\", "\\\\").replace('"', '\\"')
    launch = f'( filesrc location="{location}" ! {demux} name=d ' + " ".join(branches) + " )"
    duration = info.get_duration()
    return launch, (duration if 0 < duration < Gst.CLOCK_TIME_NONE else None)


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """A shared media factory whose file restarts from the beginning at its end.

    The demuxer (named `d`) is put in segment mode when the media is prepared and gets a
    non-flushing segment seek back to the start at each segment end, so running time, and so
    the RTP timestamps, keep increasing across loops as a live camera's would. The seeks go to
    the demuxer itself rather than the pipeline, and the media tells gst-rtsp-server that it
    cannot seek, so a PLAY with a Range does not restart it (see `_on_configure`).
    """

    def __init__(self, loop, duration=None):
        super().__init__()
        self.loop = loop
        # A loop restarts at the running time of the last frame's *start*, so the first frame
        # of the next loop would repeat the last frame's timestamp. The gap from the last
        # frame's start to the file's duration (one frame) is added to an offset on the
        # demuxer's pads at each loop, so timestamps keep their cadence, as a live camera's do.
        self.duration = duration
        self.offset = 0
        self.last_pts = 0
        self.connect("media-configure", self._on_configure)

    def _on_configure(self, _factory, media):
        if not self.loop:
            return
        bin_ = media.get_element()
        demux = bin_.get_by_name("d")
        if demux is None:
            log("no element named d; the media will not loop")
            return
        self.offset = 0  # a new media (the shared one is remade after its last client left)
        self.last_pts = 0
        media.connect("prepared", self._on_prepared, demux)
        media.connect("handle-message", self._on_message, demux)
        demux.connect("pad-added", self._on_demux_pad)
        # Most clients (ffmpeg, retina, camgate-bench's rtsp-load) send `Range: npt=0.000-` in
        # PLAY, and gst-rtsp-server answers it with a flushing seek of the shared pipeline when
        # the pipeline says it can seek: every other client sees its timestamps jump back, and
        # as that seek is not a segment seek the file then plays once and stops. A looping file
        # stands in for a live camera, so tell gst-rtsp-server it cannot seek (answer its
        # SEEKING query on each payloader with "not seekable"); the looping seeks above go to
        # the demuxer directly and are not affected.
        n = 0
        while (pay := bin_.get_by_name(f"pay{n}")) is not None:
            pad = pay.get_static_pad("src")
            pad.add_probe(Gst.PadProbeType.QUERY_UPSTREAM, self._not_seekable)
            n += 1

    def _on_demux_pad(self, _demux, pad):
        pad.add_probe(Gst.PadProbeType.BUFFER, self._track_pts)

    def _track_pts(self, _pad, info):
        pts = info.get_buffer().pts
        if pts != Gst.CLOCK_TIME_NONE and pts > self.last_pts:
            self.last_pts = pts
        return Gst.PadProbeReturn.OK

    @staticmethod
    def _not_seekable(_pad, info):
        query = info.get_query()
        if query is None or query.type != Gst.QueryType.SEEKING:
            return Gst.PadProbeReturn.OK
        # A new SEEKING query already says "not seekable" (PyGObject cannot write to it).
        return Gst.PadProbeReturn.HANDLED

    @staticmethod
    def _seek(demux, flags):
        return demux.seek(
            1.0, Gst.Format.TIME, flags, Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1
        )

    def _on_prepared(self, _media, demux):
        if not self._seek(demux, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT):
            log("initial segment seek failed; the file will not loop")

    def _on_message(self, _media, message, demux):
        if message.type == Gst.MessageType.SEGMENT_DONE:
            gap = None if self.duration is None else self.duration - self.last_pts
            if gap is not None and 0 < gap < Gst.SECOND:
                self.offset += gap
                for pad in demux.srcpads:
                    pad.set_offset(self.offset)
            self.last_pts = 0
            if not self._seek(demux, Gst.SeekFlags.SEGMENT):
                log("looping seek failed")
            return True
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=8554, help="TCP port (0 = any free port)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--file", help="an .mkv/.mp4 file to serve, looping, as a shared media")
    src.add_argument("--launch", help="a gst-launch pipeline with payloaders named pay0, pay1, ...")
    ap.add_argument("--path", default="/stream", help="mount point (default /stream)")
    ap.add_argument("--no-loop", action="store_true", help="with --file: stop at end of file")
    ap.add_argument("--user", help="require this user name (Basic and Digest auth)")
    ap.add_argument("--password", help="the password for --user")
    args = ap.parse_args()
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")

    Gst.init(None)
    path = args.path if args.path.startswith("/") else "/" + args.path

    if args.file:
        launch, duration = file_launch_line(args.file)
        factory = LoopingFactory(loop=not args.no_loop, duration=duration)
    else:
        launch = args.launch.strip()
        if not launch.startswith("("):
            launch = f"( {launch} )"
        factory = LoopingFactory(loop=False)
    log(f"launch: {launch}")
    factory.set_launch(launch)
    factory.set_shared(True)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))

    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        auth.add_digest(args.user, args.password, token)
        enable_basic_and_digest(auth)
        server.set_auth(auth)
        factory.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )

    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")
    port = server.get_bound_port()
    print(json.dumps({"url": f"rtsp://127.0.0.1:{port}{path}"}), flush=True)

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()


if __name__ == "__main__":
    main()
