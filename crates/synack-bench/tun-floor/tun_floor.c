// The floor of one TUN queue on this machine: what any userspace stack reading a TUN device
// pays per packet before doing any TCP work (issue 20, item 4: SYNs per second over TUN).
// Not synack code; run by run.sh (root), which makes its own namespace and deletes it.
//   reader IFNAME SECS [echo]: creates the TUN interface, read()s each packet; with "echo" it
//     also write()s one 40-byte packet back per packet read (a SYN-ACK's cost to the device:
//     the kernel takes it in, finds it is not for this host and drops it).
//   gen IFNAME SECS: AF_PACKET datagram socket bound to the interface, sendmmsg() batches of
//     64 40-byte SYNs (198.18.0.1 -> 198.18.0.2:80) out through it, i.e. into the reader.
// Both stop after SECS seconds (the reader gives up 30 s later if nothing arrives).
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <poll.h>

static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static double cpu(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}

static unsigned short csum(const unsigned char*p,int n){unsigned long s=0;for(int i=0;i+1<n;i+=2)s+=(p[i]<<8)|p[i+1];while(s>>16)s=(s&0xffff)+(s>>16);return ~s;}

static void syn(unsigned char*b,unsigned i){
  memset(b,0,40);b[0]=0x45;b[3]=40;b[8]=64;b[9]=6;
  unsigned char src[4]={198,18,0,1},dst[4]={198,18,0,2};memcpy(b+12,src,4);memcpy(b+16,dst,4);
  unsigned short c=csum(b,20);b[10]=c>>8;b[11]=c;
  unsigned char*t=b+20;t[0]=(1024+(i%60000))>>8;t[1]=(1024+(i%60000));t[2]=0;t[3]=80;
  t[4]=i>>24;t[5]=i>>16;t[6]=i>>8;t[7]=i;t[12]=0x50;t[13]=0x02;t[14]=0xff;t[15]=0xff;
}

int main(int argc,char**argv){
  if(argc<4){fprintf(stderr,"usage: floor reader IFNAME SECS [echo] | floor gen IFNAME SECS\n");return 2;}
  double secs=atof(argv[3]);
  if(!strcmp(argv[1],"reader")){
    int fd=open("/dev/net/tun",O_RDWR);struct ifreq ifr;memset(&ifr,0,sizeof ifr);
    ifr.ifr_flags=IFF_TUN|IFF_NO_PI;strncpy(ifr.ifr_name,argv[2],IFNAMSIZ-1);
    if(ioctl(fd,TUNSETIFF,&ifr)<0){perror("TUNSETIFF");return 1;}
    if(ioctl(fd,TUNSETPERSIST,1)<0){perror("persist");return 1;}
    int echo=argc>4;unsigned char buf[2048],out[40];syn(out,1);
    // 198.18.0.1 -> 198.18.0.3: an address the namespace neither has nor forwards to, so the
    // kernel takes the packet in and drops it (no reply that would come back to the reader).
    memcpy(out+16,(unsigned char[]){198,18,0,3},4);
    out[10]=out[11]=0;unsigned short c=csum(out,20);out[10]=c>>8;out[11]=c;
    fprintf(stderr,"ready\n");
    // wait for the first packet, then count for secs
    long n=0;double t0=0,c0=0;
    int fl=fcntl(fd,F_GETFL);fcntl(fd,F_SETFL,fl|O_NONBLOCK);
    double deadline=now()+secs+30;
    while(now()<deadline){
      ssize_t r=read(fd,buf,sizeof buf);
      if(r<0){struct pollfd p={fd,POLLIN,0};poll(&p,1,100);continue;}
      if(!n){t0=now();c0=cpu();}
      n++; if(echo) { if(write(fd,out,40)<0){} }
      if((n&1023)==0 && now()-t0>secs) break;
    }
    double dt=now()-t0,dc=cpu()-c0;
    printf("reader%s: %ld packets in %.2f s = %.0f /s; CPU %.2f s = %.2f us/packet\n",echo?"+echo":"",n,dt,n/dt,dc,dc*1e6/(n?n:1));
    return 0;
  } else {
    int s=socket(AF_PACKET,SOCK_DGRAM,htons(ETH_P_IP));if(s<0){perror("socket");return 1;}
    struct sockaddr_ll sll;memset(&sll,0,sizeof sll);sll.sll_family=AF_PACKET;sll.sll_protocol=htons(ETH_P_IP);
    sll.sll_ifindex=if_nametoindex(argv[2]);if(!sll.sll_ifindex){perror("ifindex");return 1;}
    enum{B=64};static unsigned char pk[B][40];struct mmsghdr m[B];struct iovec v[B];
    memset(m,0,sizeof m);
    for(int i=0;i<B;i++){v[i].iov_base=pk[i];v[i].iov_len=40;m[i].msg_hdr.msg_iov=&v[i];m[i].msg_hdr.msg_iovlen=1;m[i].msg_hdr.msg_name=&sll;m[i].msg_hdr.msg_namelen=sizeof sll;}
    long n=0;unsigned seq=0;double t0=now(),c0=cpu();
    while(now()-t0<secs){
      for(int i=0;i<B;i++)syn(pk[i],seq++);
      int r=sendmmsg(s,m,B,0);if(r>0)n+=r;
    }
    double dt=now()-t0,dc=cpu()-c0;
    printf("gen: %ld packets in %.2f s = %.0f /s; CPU %.2f s\n",n,dt,n/dt,dc);
    return 0;
  }
}
