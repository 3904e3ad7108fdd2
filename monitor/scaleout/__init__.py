"""Scale-out: the same processor as Faust workers on Kafka.

``url`` parses ``kafka://HOST:PORT[,HOST:PORT]/TOPIC``; ``topics`` creates the
topics with matching partition counts; ``producer`` feeds sources into the
posts topic (``monitor collect``); ``step`` is one worker batch and ``agent``
the Faust app around it (``monitor worker``); ``archiver`` and
``archive_from`` fill the daily archive from the tagged topic (``monitor
archive --from``); ``options`` holds the flags they share.
"""

__all__: list[str] = []
