"""Scale-out: the same processor as Faust workers on Kafka (``monitor collect|worker``).

``url`` parses ``kafka://HOST:PORT[,HOST:PORT]/TOPIC``; ``topics`` creates the
topics with matching partition counts; ``producer`` feeds sources into the
posts topic; ``agent`` is the Faust worker; ``archiver`` fills the daily
archive from the tagged topic.
"""

__all__: list[str] = []
